"""Every table module imported, so that one metadata holds every table (Alembic, `db check`)."""
from governance.storage import embedding_tables, tables

TABLE_MODULES = (tables, embedding_tables)
metadata = tables.Base.metadata
