"""The delivery log counted by hour, kept by the database itself, and its check against the log.

``deliveryhour`` holds, per UTC hour × topic × station × channel × bulletin ×
campaign × status, how many deliveries and their seconds; ``deliveryreach``
holds, per topic and recipient, how many ``sent``/``delivered`` SMS rows there
are and when the first and the last were written. Reports read these instead
of scanning the log (``aggregate``).

They are kept by triggers on ``delivery`` (insert, delete, and every update
that changes a counted column), so they change in the same transaction as the
log row whoever writes it: the functions of ``deliveries``, a set-based
``UPDATE``, a foreign key's ``SET NULL`` when a topic, station, bulletin or
campaign is deleted. Nothing in Python has to remember to call them, and a
rollback undoes both. ``rebuild`` recounts them from the log (the migration
that adds them, and a repair); ``drift`` compares them with a fresh count.

Hours, not days: a report's days are those of its time zone, chosen when it
runs; any period whose bounds fall on whole UTC hours (every zone with a
whole-hour offset, Asia/Ho_Chi_Minh included) is a sum of hours.
"""

from __future__ import annotations

import math

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ..models import REACHED_WHERE

REACHED = ("sent", "delivered")  # reports.terms.PEOPLE_SMS, spelled out for the SQL below
_REACHED_SQL = ", ".join(f"'{s}'" for s in REACHED)
assert REACHED_WHERE == f"channel = 'sms' AND status IN ({_REACHED_SQL})"  # ix_delivery_reached serves the lookups
HOUR_KEY = "topic_id, channel, hour, station_id, bulletin_id, campaign_id, status"
COUNTED_COLUMNS = ("status", "channel", "topic_id", "station_id", "bulletin_id", "campaign_id", "created_at",
                   "duration_s", "recipient")
TRIGGERS = ("delivery_rollup_insert", "delivery_reach_insert", "delivery_rollup_delete", "delivery_reach_delete",
            "delivery_rollup_update", "delivery_reach_leave", "delivery_reach_enter")


def _qualifies(row: str) -> str:
    return f"({row}.channel = 'sms' AND {row}.status IN ({_REACHED_SQL}) AND {row}.recipient IS NOT NULL)"


def _changed(columns: tuple[str, ...]) -> str:
    return " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)


# --------------------------------------------------------------------------- SQLite

_SQLITE_HOUR = "substr({row}.created_at, 1, 13) || ':00:00.000000'"


def _sqlite_add(row: str = "NEW") -> str:
    hour = _SQLITE_HOUR.format(row=row)
    return (f"INSERT INTO deliveryhour (hour, topic_id, station_id, channel, bulletin_id, campaign_id, status, n, "
            f"seconds) VALUES ({hour}, coalesce({row}.topic_id, 0), coalesce({row}.station_id, 0), {row}.channel, "
            f"coalesce({row}.bulletin_id, 0), coalesce({row}.campaign_id, 0), {row}.status, 1, "
            f"coalesce({row}.duration_s, 0)) ON CONFLICT ({HOUR_KEY}) DO UPDATE SET n = n + 1, "
            "seconds = seconds + excluded.seconds;")


def _sqlite_remove(row: str = "OLD") -> str:
    hour = _SQLITE_HOUR.format(row=row)
    return (f"UPDATE deliveryhour SET n = n - 1, seconds = seconds - coalesce({row}.duration_s, 0) "
            f"WHERE topic_id = coalesce({row}.topic_id, 0) AND channel = {row}.channel AND hour = {hour} "
            f"AND station_id = coalesce({row}.station_id, 0) AND bulletin_id = coalesce({row}.bulletin_id, 0) "
            f"AND campaign_id = coalesce({row}.campaign_id, 0) AND status = {row}.status;")


def _sqlite_reach_add(row: str = "NEW") -> str:
    return (f"INSERT INTO deliveryreach (topic_id, recipient, n, first_at, last_at) "
            f"SELECT coalesce({row}.topic_id, 0), {row}.recipient, 1, {row}.created_at, {row}.created_at "
            f"WHERE {_qualifies(row)} ON CONFLICT (topic_id, recipient) DO UPDATE SET n = n + 1, "
            "first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at);")


def _sqlite_reach_remove(row: str = "OLD") -> str:
    """The statements for a row that counted leaving (the trigger's WHEN says it counted)."""
    # The first or last row leaving: look the new bound up in the log (after the change, so without it).
    # INDEXED BY: without statistics SQLite would walk the topic's part of ix_delivery_report instead
    others = (f"FROM delivery INDEXED BY ix_delivery_reached WHERE recipient = {row}.recipient "
              f"AND topic_id IS {row}.topic_id AND {REACHED_WHERE}")
    key = f"topic_id = coalesce({row}.topic_id, 0) AND recipient = {row}.recipient"
    return (f"UPDATE deliveryreach SET n = n - 1 WHERE {key}; "
            f"DELETE FROM deliveryreach WHERE {key} AND n <= 0; "
            f"UPDATE deliveryreach SET first_at = (SELECT min(created_at) {others}) "
            f"WHERE {key} AND first_at = {row}.created_at; "
            f"UPDATE deliveryreach SET last_at = (SELECT max(created_at) {others}) "
            f"WHERE {key} AND last_at = {row}.created_at;")


def _sqlite_triggers() -> list[str]:
    counted = ", ".join(COUNTED_COLUMNS)
    same_reach = (f"{_qualifies('OLD')} AND {_qualifies('NEW')} AND OLD.topic_id IS NEW.topic_id "
                  "AND OLD.recipient IS NEW.recipient AND OLD.created_at IS NEW.created_at")
    return [
        f"CREATE TRIGGER delivery_rollup_insert AFTER INSERT ON delivery BEGIN {_sqlite_add()} END",
        f"CREATE TRIGGER delivery_reach_insert AFTER INSERT ON delivery WHEN {_qualifies('NEW')} "
        f"BEGIN {_sqlite_reach_add()} END",
        f"CREATE TRIGGER delivery_rollup_delete AFTER DELETE ON delivery BEGIN {_sqlite_remove()} END",
        f"CREATE TRIGGER delivery_reach_delete AFTER DELETE ON delivery WHEN {_qualifies('OLD')} "
        f"BEGIN {_sqlite_reach_remove()} END",
        f"CREATE TRIGGER delivery_rollup_update AFTER UPDATE OF {counted} ON delivery "
        f"WHEN {_changed(COUNTED_COLUMNS[:-1])} BEGIN {_sqlite_remove()} {_sqlite_add()} END",
        # A counted row that changes person, topic or time leaves and enters (either order: a bound is
        # looked up in the log as it is after the change).
        f"CREATE TRIGGER delivery_reach_leave AFTER UPDATE OF {counted} ON delivery "
        f"WHEN {_qualifies('OLD')} AND NOT ({same_reach}) BEGIN {_sqlite_reach_remove()} END",
        f"CREATE TRIGGER delivery_reach_enter AFTER UPDATE OF {counted} ON delivery "
        f"WHEN {_qualifies('NEW')} AND NOT ({same_reach}) BEGIN {_sqlite_reach_add()} END",
    ]


# --------------------------------------------------------------------------- PostgreSQL

_PG_HOUR = "(date_trunc('hour', {row}.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


def _pg_function() -> str:
    old_hour, new_hour = _PG_HOUR.format(row="OLD"), _PG_HOUR.format(row="NEW")
    others = ("FROM delivery d WHERE d.recipient = OLD.recipient AND d.topic_id IS NOT DISTINCT FROM OLD.topic_id "
              f"AND d.channel = 'sms' AND d.status IN ({_REACHED_SQL})")
    return f"""
CREATE OR REPLACE FUNCTION delivery_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE deliveryhour SET n = n - 1, seconds = seconds - coalesce(OLD.duration_s, 0)
     WHERE topic_id = coalesce(OLD.topic_id, 0) AND channel = OLD.channel AND hour = {old_hour}
       AND station_id = coalesce(OLD.station_id, 0) AND bulletin_id = coalesce(OLD.bulletin_id, 0)
       AND campaign_id = coalesce(OLD.campaign_id, 0) AND status = OLD.status;
    IF {_qualifies('OLD')} AND NOT (TG_OP = 'UPDATE' AND {_qualifies('NEW')} AND OLD.topic_id IS NOT DISTINCT
        FROM NEW.topic_id AND OLD.recipient = NEW.recipient AND OLD.created_at = NEW.created_at) THEN
      UPDATE deliveryreach r SET n = r.n - 1,
        first_at = CASE WHEN r.n > 1 AND r.first_at = OLD.created_at
                        THEN (SELECT min(d.created_at) {others}) ELSE r.first_at END,
        last_at = CASE WHEN r.n > 1 AND r.last_at = OLD.created_at
                       THEN (SELECT max(d.created_at) {others}) ELSE r.last_at END
       WHERE r.topic_id = coalesce(OLD.topic_id, 0) AND r.recipient = OLD.recipient;
      DELETE FROM deliveryreach WHERE topic_id = coalesce(OLD.topic_id, 0) AND recipient = OLD.recipient
         AND n <= 0;
    END IF;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO deliveryhour (hour, topic_id, station_id, channel, bulletin_id, campaign_id, status, n, seconds)
    VALUES ({new_hour}, coalesce(NEW.topic_id, 0), coalesce(NEW.station_id, 0), NEW.channel,
            coalesce(NEW.bulletin_id, 0), coalesce(NEW.campaign_id, 0), NEW.status, 1, coalesce(NEW.duration_s, 0))
    ON CONFLICT ({HOUR_KEY}) DO UPDATE SET n = deliveryhour.n + 1, seconds = deliveryhour.seconds + EXCLUDED.seconds;
    IF {_qualifies('NEW')} AND NOT (TG_OP = 'UPDATE' AND {_qualifies('OLD')} AND OLD.topic_id IS NOT DISTINCT
        FROM NEW.topic_id AND OLD.recipient = NEW.recipient AND OLD.created_at = NEW.created_at) THEN
      INSERT INTO deliveryreach (topic_id, recipient, n, first_at, last_at)
      VALUES (coalesce(NEW.topic_id, 0), NEW.recipient, 1, NEW.created_at, NEW.created_at)
      ON CONFLICT (topic_id, recipient) DO UPDATE SET n = deliveryreach.n + 1,
        first_at = least(deliveryreach.first_at, EXCLUDED.first_at),
        last_at = greatest(deliveryreach.last_at, EXCLUDED.last_at);
    END IF;
  END IF;
  RETURN NULL;
END $$"""


def _pg_triggers() -> list[str]:
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in COUNTED_COLUMNS)
    return [
        _pg_function(),
        "CREATE TRIGGER delivery_rollup_insert AFTER INSERT ON delivery FOR EACH ROW EXECUTE FUNCTION "
        "delivery_rollup()",
        "CREATE TRIGGER delivery_rollup_delete AFTER DELETE ON delivery FOR EACH ROW EXECUTE FUNCTION "
        "delivery_rollup()",
        f"CREATE TRIGGER delivery_rollup_update AFTER UPDATE OF {', '.join(COUNTED_COLUMNS)} ON delivery "
        f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION delivery_rollup()",
    ]


# --------------------------------------------------------------------------- install, rebuild, check

def install_triggers(connection: Connection) -> None:
    """(Re)create the triggers for the connection's database."""
    drop_triggers(connection)
    for statement in (_pg_triggers() if connection.dialect.name == "postgresql" else _sqlite_triggers()):
        connection.exec_driver_sql(statement)


def drop_triggers(connection: Connection) -> None:
    postgres = connection.dialect.name == "postgresql"
    for name in TRIGGERS:
        connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}" + (" ON delivery" if postgres else ""))
    if postgres:
        connection.exec_driver_sql("DROP FUNCTION IF EXISTS delivery_rollup()")


def _hour_sql(connection: Connection, column: str = "created_at") -> str:
    if connection.dialect.name == "postgresql":
        return _PG_HOUR.format(row="delivery").replace("delivery.created_at", column)
    return f"substr({column}, 1, 13) || ':00:00.000000'"


_COUNT_HOURS = """SELECT {hour} AS hour, coalesce(topic_id, 0) AS topic_id, coalesce(station_id, 0) AS station_id,
    channel, coalesce(bulletin_id, 0) AS bulletin_id, coalesce(campaign_id, 0) AS campaign_id, status,
    count(*) AS n, coalesce(sum(duration_s), 0) AS seconds
  FROM delivery GROUP BY 1, 2, 3, 4, 5, 6, 7"""
_COUNT_REACH = f"""SELECT coalesce(topic_id, 0) AS topic_id, recipient, count(*) AS n, min(created_at) AS first_at,
    max(created_at) AS last_at
  FROM delivery WHERE channel = 'sms' AND status IN ({_REACHED_SQL}) AND recipient IS NOT NULL
  GROUP BY 1, 2"""


def rebuild(connection: Connection) -> None:
    """Recount both tables from the log, set-based, in the caller's transaction."""
    connection.exec_driver_sql("DELETE FROM deliveryhour")
    connection.exec_driver_sql("DELETE FROM deliveryreach")
    connection.exec_driver_sql("INSERT INTO deliveryhour (hour, topic_id, station_id, channel, bulletin_id, "
                               "campaign_id, status, n, seconds) " + _COUNT_HOURS.format(hour=_hour_sql(connection)))
    connection.exec_driver_sql("INSERT INTO deliveryreach (topic_id, recipient, n, first_at, last_at) "
                               + _COUNT_REACH)


def drift(connection: Connection) -> list[str]:
    """What differs between the rollup and a fresh count of the log (empty: they agree)."""
    fresh = {tuple(r[:7]): (r[7], r[8]) for r in
             connection.execute(text(_COUNT_HOURS.format(hour=_hour_sql(connection))))}
    kept = {}
    for row in connection.execute(text("SELECT hour, topic_id, station_id, channel, bulletin_id, campaign_id, "
                                       "status, n, seconds FROM deliveryhour WHERE n != 0")):
        kept[tuple(row[:7])] = (row[7], row[8])
    problems = []
    hours = {_hour_text(k): v for k, v in fresh.items()}
    kept = {_hour_text(k): v for k, v in kept.items()}
    for key in sorted(set(hours) | set(kept), key=str):
        want, have = hours.get(key, (0, 0.0)), kept.get(key, (0, 0.0))
        if want[0] != have[0] or abs(want[1] - have[1]) > 1e-6 * max(1.0, abs(want[1])):
            problems.append(f"deliveryhour {key}: log {want}, rollup {have}")
    fresh_reach = {tuple(r[:2]): (r[2], str(r[3]), str(r[4])) for r in connection.execute(text(_COUNT_REACH))}
    kept_reach = {tuple(r[:2]): (r[2], str(r[3]), str(r[4])) for r in connection.execute(text(
        "SELECT topic_id, recipient, n, first_at, last_at FROM deliveryreach"))}
    for key in sorted(set(fresh_reach) | set(kept_reach), key=str):
        if fresh_reach.get(key) != kept_reach.get(key):
            problems.append(f"deliveryreach {key}: log {fresh_reach.get(key)}, rollup {kept_reach.get(key)}")
    return problems


def _hour_text(key: tuple) -> tuple:
    hour, *rest = key
    return (str(hour)[:13], *rest)


def report_differences(a, b, path: str = "report") -> list[str]:
    """Where two ``Report.to_dict()`` differ; floats to 1e-9 (the rollup adds seconds in another order)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in report_differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} rows != {len(b)} rows"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in report_differences(x, y, f"{path}[{i}]")]
    if isinstance(a, float) or isinstance(b, float):
        return [] if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9) else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]
