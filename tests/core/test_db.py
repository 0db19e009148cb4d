"""The engine: readers never block behind a writer, writers wait instead of failing."""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

from broadcaster import db


def test_reader_is_not_blocked_by_an_open_write_transaction(app):
    with db.session_scope(app.engine) as writer:
        writer.exec(text("UPDATE station SET name = 'x'"))
        started = time.monotonic()
        with app.read_session() as reader:
            assert reader.exec(text("SELECT count(*) FROM station")).one()[0] == 1
        assert time.monotonic() - started < 1.0


def test_second_writer_waits_for_the_first(app):
    order = []

    def second():
        with db.session_scope(app.engine) as session:
            session.exec(text("UPDATE station SET name = 'second'"))
            order.append("second")

    with db.session_scope(app.engine) as first:
        first.exec(text("UPDATE station SET name = 'first'"))
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append("first")
    thread.join(timeout=10)
    assert order == ["first", "second"]
    with app.read_session() as session:
        assert session.exec(text("SELECT name FROM station")).one()[0] == "second"


def test_init_twice_changes_nothing(run, isolated_home):
    first = run("init").output
    assert "config created" in first and f"database at revision {db.HEAD_REVISION}" in first
    second = run("init").output
    assert "nothing changed" in second


def test_head_revision_constant_is_alembic_head():
    assert db.HEAD_REVISION == db.head_revision()


def test_commands_refuse_a_database_behind_the_code(run, app):
    from sqlalchemy import text

    with app.engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    result = run("plan", "list", ok=False)
    assert "0001" in result.output and "db upgrade" in result.output


def test_commands_refuse_before_init(run):
    result = run("plan", "list", ok=False)
    assert "broadcaster init" in result.output


def test_every_command_has_help(run):
    from broadcaster.cli.main import cli

    def walk(group, path):
        for name, command in group.commands.items():
            assert command.help, f"{' '.join(path + [name])} has no help"
            run(*path, name, "--help")
            if hasattr(command, "commands"):
                walk(command, path + [name])

    walk(cli, [])


def test_example_config_documents_every_default():
    import tomllib

    from broadcaster.config import DEFAULTS, example_config_text

    assert tomllib.loads(example_config_text()) == DEFAULTS


def test_unknown_config_key_is_named(run, isolated_home):
    (isolated_home / "broadcaster.toml").write_text("[sms]\nbackend = 'outbox'\nbakend = 'x'\n")
    result = run("plan", "list", ok=False)
    assert "sms.bakend" in result.output and "broadcaster.toml" in result.output


def test_migrations_match_the_models(app):
    """Autogenerate against a migrated database finds nothing: no model change lacks its migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext
    from sqlmodel import SQLModel

    with app.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert diff == []
