"""The application context the CLI and the daemon share: config + engine.

The core never imports the CLI; the CLI builds an ``App`` and passes it down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from . import db
from .config import Config, find_config_path, load_config, render_config_toml
from .fileutil import make_private, private_dir, write_text_atomic

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger("broadcaster")


@dataclass
class App:
    config: Config
    _checked: bool = field(default=False, repr=False)

    @classmethod
    def load(cls, config_path: str | Path | None = None) -> App:
        return cls(load_config(config_path))

    committed: bool = field(default=False, repr=False)  #: this process wrote to the database

    @cached_property
    def engine(self) -> Engine:
        from sqlalchemy import event

        engine = db.make_engine(self.config.database_url)
        event.listen(engine, "commit", self._on_commit)
        return engine

    def _on_commit(self, _connection) -> None:  # noqa: ANN001
        self.committed = True

    def ready_engine(self) -> Engine:
        """The engine, after checking the schema is initialised and current."""
        if not self._checked:
            db.require_current_schema(self.engine)
            self._checked = True
        return self.engine

    def session(self):
        return db.session_scope(self.ready_engine())

    def read_session(self):
        """For commands that only read (lists, reports, status): takes no write lock."""
        return db.read_scope(self.ready_engine())


@dataclass
class InitResult:
    config_path: Path
    config_created: bool
    data_dir: Path
    database_url: str
    revision_before: str | None
    revision_after: str | None
    repaired: list[Path] = field(default_factory=list)  #: readable by others before: now owner-only

    @property
    def changed(self) -> bool:
        return self.config_created or self.revision_before != self.revision_after


def initialise(config_path: str | Path | None = None, data_dir: Path | None = None) -> InitResult:
    """Create the config (if missing), the data dir and the database; idempotent."""
    path, exists = find_config_path(config_path)
    if not exists:
        write_text_atomic(path, render_config_toml(data_dir))
    config = load_config(path)
    for directory in (config.data_dir, config.cache_dir, config.output_dir, config.recordings_dir):
        private_dir(directory)
    engine = db.make_engine(config.database_url)
    try:
        before, after = db.upgrade(engine)
    finally:
        engine.dispose()
    return InitResult(config.path, not exists, config.data_dir, config.database_url, before, after,
                      repaired=repair_private_modes(config))


def repair_private_modes(config) -> list[Path]:  # noqa: ANN001
    """Residents' numbers live in the database, the outbox and the data folder: owner-only, whatever
    made them. Returns what was looser and is now repaired."""
    paths = [config.data_dir, config.cache_dir, config.output_dir, config.recordings_dir, config.sms_outbox_path,
             config.path]
    if config.database_url.startswith("sqlite"):
        database = Path(config.database_url.split("///", 1)[-1])
        paths += [database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")]
    if config.data_dir.is_dir():
        paths += list(config.data_dir.rglob("*"))
    return sorted({path for path in paths if not path.is_symlink() and make_private(path)})
