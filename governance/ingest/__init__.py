"""Upload events in: the event contract, safe fetching, sniffing and loading content."""
