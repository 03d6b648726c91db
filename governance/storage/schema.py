"""Every table module imported, so that one metadata holds every table (Alembic, `db check`)."""
from governance.storage import console_tables, embedding_tables, hash_tables, tables

TABLE_MODULES = (tables, embedding_tables, hash_tables, console_tables)
metadata = tables.Base.metadata
