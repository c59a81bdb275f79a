"""Alembic environment: migrations run on a connection the store hands over (see migrate.py), or, offline,
render the SQL for a dialect named in the config's attributes (`bridge db upgrade --sql`)."""

from __future__ import annotations

from alembic import context

from bridge.store.models import metadata

if context.is_offline_mode():
    dialect = context.config.attributes["dialect"]
    context.configure(
        dialect_name=dialect,
        target_metadata=metadata,
        render_as_batch=dialect == "sqlite",
        literal_binds=True,
        transaction_per_migration=False,
    )
else:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through `bridge db upgrade`, which passes a connection")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
with context.begin_transaction():
    context.run_migrations()
