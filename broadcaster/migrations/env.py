"""Alembic environment: runs on the connection ``broadcaster.db.upgrade`` hands in."""

from alembic import context
from sqlmodel import SQLModel

from broadcaster import models  # noqa: F401  (registers the tables)
from broadcaster.db import make_engine

target_metadata = SQLModel.metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.begin() as own_connection:
        _run(own_connection)


def _run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    context.run_migrations()


run_migrations()
