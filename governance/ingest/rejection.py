"""The one error of ingestion: content that cannot be accepted."""


class RejectedInput(Exception):
    """The content cannot be accepted; the message is the `reason` on the reject decision."""
