"""Alembic environment of the project: one history for every table (see README.md here).

``ivr.services.migrate.ensure_schema`` passes an open connection (already locked, in a transaction) via
``config.attributes['connection']``; the alembic CLI gets a connection from ``sqlalchemy.url`` or, when that is
unset, from the IVR settings (``IVR_DB_URL`` / ``IVR_DATA_DIR``).
"""

from __future__ import annotations

from alembic import context

from ivr.services.migrate import load_models, lock_for_migration, migration_engine

config = context.config
target_metadata = load_models()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from ivr.config import get_settings

    return get_settings().database_url


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER goes through table copies
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=_url().startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = migration_engine(_url())
    try:
        with engine.begin() as conn:
            lock_for_migration(conn)
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
