"""Alembic environment: the only thing that creates or changes the schema."""
from alembic import context
from sqlalchemy import create_engine, pool

from governance.storage.migrate import include_object
from governance.storage.schema import metadata

config = context.config
target_metadata = metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    connectable = create_engine(url, poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True,
                          include_object=include_object)
        with context.begin_transaction():
            # Serialise concurrent `db upgrade` calls (several workers starting at once).
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7247001)")
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
