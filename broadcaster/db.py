"""The one engine factory, sessions, and migrations.

SQLite is the default. A daemon and a CLI write to it at once, so every
connection uses WAL, a busy timeout and ``BEGIN IMMEDIATE`` for transactions:
a writer waits for the lock instead of failing half-way with
"database is locked". A PostgreSQL URL in ``database.url`` works as well.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import BroadcasterError

if TYPE_CHECKING:  # SQLAlchemy and SQLModel load when an engine is made, not when the CLI starts
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY_OPTION = "broadcaster_read_only"
#: Execution option: on SQLite the transaction commits with ``synchronous=FULL`` (the WAL is fsynced
#: at its commit, so it survives a power cut); other transactions keep ``NORMAL`` (durable against a
#: crash of the process, synced at checkpoints). For claims whose loss would let a message be sent twice.
DURABLE_OPTION = "broadcaster_durable"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# The newest migration in migrations/versions. Checking a database against this constant costs one
# query; asking Alembic for its head reads every migration script (~0.45 s on every command).
# tests/core/test_db.py checks that it equals Alembic's head: a new migration must update it.
HEAD_REVISION = "0007"


def make_engine(url: str, *, echo: bool = False) -> Engine:
    from sqlmodel import create_engine

    if url.startswith("sqlite"):
        database = url.split("///", 1)[-1]
        if database and database != ":memory:":
            from .fileutil import create_private_file, private_dir

            private_dir(Path(database).parent)
            create_private_file(Path(database))  # SQLite gives its -wal and -shm files the same mode
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
        )
        _configure_sqlite(engine)
        return engine
    # Timestamps are aware UTC; PostgreSQL stores an aware value in a "timestamp without time zone"
    # column as the session's local time, so the session's zone must be UTC whatever the server's is.
    connect_args = {"options": "-c timezone=UTC"} if url.startswith("postgresql") else {}
    return create_engine(url, echo=echo, pool_pre_ping=True, connect_args=connect_args)


def _configure_sqlite(engine: Engine) -> None:
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # noqa: ANN001
        # Let SQLAlchemy, not pysqlite, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        _record.info["synchronous"] = "NORMAL"

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # noqa: ANN001
        # Readers (reports, lists, status) take no write lock; writers take it up front.
        options = connection.get_execution_options()
        read_only = options.get(READ_ONLY_OPTION, False)
        # SQLite applies the setting in force when the transaction commits; it cannot change inside one.
        wanted = "FULL" if options.get(DURABLE_OPTION, False) else "NORMAL"
        info = connection.connection.info
        if info.get("synchronous") != wanted:
            connection.exec_driver_sql(f"PRAGMA synchronous={wanted}")
            info["synchronous"] = wanted
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def durable(engine: Engine) -> Engine:
    """The engine whose transactions commit with :data:`DURABLE_OPTION` (a no-op outside SQLite).

    One per engine: making an option engine costs more than a small claim's SQL."""
    option_engine = engine.__dict__.get(DURABLE_OPTION)
    if option_engine is None:
        option_engine = engine.__dict__[DURABLE_OPTION] = engine.execution_options(**{DURABLE_OPTION: True})
    return option_engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    from sqlmodel import Session

    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """A read-only unit of work: a plain (deferred) transaction that never blocks writers."""
    from sqlmodel import Session

    # Closing (not rolling back) ends the transaction without expiring what was read.
    with Session(engine.execution_options(**{READ_ONLY_OPTION: True}), expire_on_commit=False) as session:
        yield session


def alembic_config(url: str):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: not initialised), read without loading Alembic."""
    from sqlalchemy import inspect, text

    with engine.execution_options(**{READ_ONLY_OPTION: True}).connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def head_revision() -> str | None:
    """Alembic's head, read from the migration scripts (slow: for ``db status`` and tests)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Apply pending migrations. Returns (revision before, revision after)."""
    from alembic import command

    before = current_revision(engine)
    cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
    return before, current_revision(engine)


def require_current_schema(engine: Engine) -> None:
    """Refuse to work on a database that is missing or behind the code."""
    require_revision(current_revision(engine))


def require_revision(current: str | None) -> None:
    """Raise unless ``current`` (the database's revision, None: not initialised) is the code's."""
    head = HEAD_REVISION
    if current is None:
        raise BroadcasterError(
            "Chưa có cơ sở dữ liệu, hãy chạy 'broadcaster init' / "
            "no database yet: run 'broadcaster init'"
        )
    if current != head:
        raise BroadcasterError(
            f"Cơ sở dữ liệu ở phiên bản cũ ({current}), hãy chạy 'broadcaster db upgrade' / "
            f"database schema {current} is behind {head}: run 'broadcaster db upgrade'"
        )
