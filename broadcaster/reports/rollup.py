"""The delivery log counted by hour, kept by the database itself, and its check against the log.

``deliveryhour`` holds, per UTC hour × topic × station × channel × bulletin ×
campaign × status, how many deliveries and their seconds; ``deliveryreach``
holds, per topic and recipient, how many ``sent``/``delivered`` SMS rows there
are and when the first and the last were written; ``deliverystationreach`` the
same per station as well (rows with a station only: a station's report counts
its people there). Reports read these instead of scanning the log
(``aggregate``).

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
TABLES = ("deliveryhour", "deliveryreach", "deliverystationreach")
COUNTED_COLUMNS = ("status", "channel", "topic_id", "station_id", "bulletin_id", "campaign_id", "created_at",
                   "duration_s", "recipient")
TRIGGERS = ("delivery_rollup_insert", "delivery_reach_insert", "delivery_rollup_delete", "delivery_reach_delete",
            "delivery_rollup_update", "delivery_reach_leave", "delivery_reach_enter",
            "delivery_station_reach_insert", "delivery_station_reach_delete", "delivery_station_reach_leave",
            "delivery_station_reach_enter")


def _qualifies(row: str, table: str = "deliveryreach") -> str:
    """The row counts in the reach ``table``."""
    station = f" AND {row}.station_id IS NOT NULL" if table == "deliverystationreach" else ""
    return f"({row}.channel = 'sms' AND {row}.status IN ({_REACHED_SQL}) AND {row}.recipient IS NOT NULL{station})"


def _reach_key(table: str) -> str:
    return "station_id, topic_id, recipient" if table == "deliverystationreach" else "topic_id, recipient"


def _same_reach(table: str, same: str = "IS") -> str:
    """An update that keeps a counted row in the same reach row (with both its times) touches no reach."""
    columns = ("topic_id", "recipient", "created_at") + (("station_id",) if table == "deliverystationreach" else ())
    return " AND ".join([_qualifies("OLD", table), _qualifies("NEW", table),
                         *(f"OLD.{c} {same} NEW.{c}" for c in columns)])


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


def _reach_match(table: str, alias: str = "", row: str = "OLD") -> str:
    """The reach row of ``row`` (``alias``: the reach table's, e.g. ``r.``)."""
    station = f" AND {alias}station_id = {row}.station_id" if table == "deliverystationreach" else ""
    return f"{alias}topic_id = coalesce({row}.topic_id, 0) AND {alias}recipient = {row}.recipient{station}"


def _reach_values(table: str, row: str) -> str:
    """``row``'s values for the reach key columns."""
    station = f"{row}.station_id, " if table == "deliverystationreach" else ""
    return f"{station}coalesce({row}.topic_id, 0), {row}.recipient"


def _sqlite_reach_add(table: str, row: str = "NEW") -> str:
    return (f"INSERT INTO {table} ({_reach_key(table)}, n, first_at, last_at) "
            f"SELECT {_reach_values(table, row)}, 1, {row}.created_at, {row}.created_at "
            f"WHERE {_qualifies(row, table)} ON CONFLICT ({_reach_key(table)}) DO UPDATE SET "
            "n = n + 1, first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at);")


def _sqlite_reach_remove(table: str, row: str = "OLD") -> str:
    """The statements for a row that counted leaving (the trigger's WHEN says it counted)."""
    # The first or last row leaving: look the new bound up in the log (after the change, so without it).
    # INDEXED BY: without statistics SQLite would walk the topic's part of ix_delivery_report instead
    station = f" AND station_id = {row}.station_id" if table == "deliverystationreach" else ""
    others = (f"FROM delivery INDEXED BY ix_delivery_reached WHERE recipient = {row}.recipient "
              f"AND topic_id IS {row}.topic_id AND {REACHED_WHERE}{station}")
    key = _reach_match(table, row=row)
    return (f"UPDATE {table} SET n = n - 1 WHERE {key}; "
            f"DELETE FROM {table} WHERE {key} AND n <= 0; "
            f"UPDATE {table} SET first_at = (SELECT min(created_at) {others}) "
            f"WHERE {key} AND first_at = {row}.created_at; "
            f"UPDATE {table} SET last_at = (SELECT max(created_at) {others}) "
            f"WHERE {key} AND last_at = {row}.created_at;")


def _trigger_prefix(table: str) -> str:
    return "delivery_station_reach" if table == "deliverystationreach" else "delivery_reach"


def _sqlite_triggers(tables: tuple[str, ...]) -> list[str]:
    counted = ", ".join(COUNTED_COLUMNS)
    statements = [
        f"CREATE TRIGGER delivery_rollup_insert AFTER INSERT ON delivery BEGIN {_sqlite_add()} END",
        f"CREATE TRIGGER delivery_rollup_delete AFTER DELETE ON delivery BEGIN {_sqlite_remove()} END",
        f"CREATE TRIGGER delivery_rollup_update AFTER UPDATE OF {counted} ON delivery "
        f"WHEN {_changed(COUNTED_COLUMNS[:-1])} BEGIN {_sqlite_remove()} {_sqlite_add()} END",
    ]
    for table in tables[1:]:
        name = _trigger_prefix(table)
        statements += [
            f"CREATE TRIGGER {name}_insert AFTER INSERT ON delivery WHEN {_qualifies('NEW', table)} "
            f"BEGIN {_sqlite_reach_add(table)} END",
            f"CREATE TRIGGER {name}_delete AFTER DELETE ON delivery WHEN {_qualifies('OLD', table)} "
            f"BEGIN {_sqlite_reach_remove(table)} END",
            # A counted row that changes person, topic, station or time leaves and enters (either order: a
            # bound is looked up in the log as it is after the change).
            f"CREATE TRIGGER {name}_leave AFTER UPDATE OF {counted} ON delivery "
            f"WHEN {_qualifies('OLD', table)} AND NOT ({_same_reach(table)}) BEGIN {_sqlite_reach_remove(table)} END",
            f"CREATE TRIGGER {name}_enter AFTER UPDATE OF {counted} ON delivery "
            f"WHEN {_qualifies('NEW', table)} AND NOT ({_same_reach(table)}) BEGIN {_sqlite_reach_add(table)} END",
        ]
    return statements


# --------------------------------------------------------------------------- PostgreSQL

_PG_HOUR = "(date_trunc('hour', {row}.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


def _pg_reach_leave(table: str) -> str:
    station = table == "deliverystationreach"
    others = ("FROM delivery d WHERE d.recipient = OLD.recipient AND d.topic_id IS NOT DISTINCT FROM OLD.topic_id "
              f"AND d.channel = 'sms' AND d.status IN ({_REACHED_SQL})" + (" AND d.station_id = OLD.station_id"
                                                                          if station else ""))
    key = _reach_match(table)
    return f"""
    IF {_qualifies('OLD', table)} AND NOT (TG_OP = 'UPDATE' AND {_same_reach(table, 'IS NOT DISTINCT FROM')}) THEN
      UPDATE {table} r SET n = r.n - 1,
        first_at = CASE WHEN r.n > 1 AND r.first_at = OLD.created_at
                        THEN (SELECT min(d.created_at) {others}) ELSE r.first_at END,
        last_at = CASE WHEN r.n > 1 AND r.last_at = OLD.created_at
                       THEN (SELECT max(d.created_at) {others}) ELSE r.last_at END
       WHERE {_reach_match(table, 'r.')};
      DELETE FROM {table} WHERE {key} AND n <= 0;
    END IF;"""


def _pg_reach_enter(table: str) -> str:
    return f"""
    IF {_qualifies('NEW', table)} AND NOT (TG_OP = 'UPDATE' AND {_same_reach(table, 'IS NOT DISTINCT FROM')}) THEN
      INSERT INTO {table} ({_reach_key(table)}, n, first_at, last_at)
      VALUES ({_reach_values(table, 'NEW')}, 1, NEW.created_at, NEW.created_at)
      ON CONFLICT ({_reach_key(table)}) DO UPDATE SET n = {table}.n + 1,
        first_at = least({table}.first_at, EXCLUDED.first_at),
        last_at = greatest({table}.last_at, EXCLUDED.last_at);
    END IF;"""


def _pg_function(tables: tuple[str, ...]) -> str:
    old_hour, new_hour = _PG_HOUR.format(row="OLD"), _PG_HOUR.format(row="NEW")
    return f"""
CREATE OR REPLACE FUNCTION delivery_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE deliveryhour SET n = n - 1, seconds = seconds - coalesce(OLD.duration_s, 0)
     WHERE topic_id = coalesce(OLD.topic_id, 0) AND channel = OLD.channel AND hour = {old_hour}
       AND station_id = coalesce(OLD.station_id, 0) AND bulletin_id = coalesce(OLD.bulletin_id, 0)
       AND campaign_id = coalesce(OLD.campaign_id, 0) AND status = OLD.status;{"".join(map(_pg_reach_leave, tables[1:]))}
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    INSERT INTO deliveryhour (hour, topic_id, station_id, channel, bulletin_id, campaign_id, status, n, seconds)
    VALUES ({new_hour}, coalesce(NEW.topic_id, 0), coalesce(NEW.station_id, 0), NEW.channel,
            coalesce(NEW.bulletin_id, 0), coalesce(NEW.campaign_id, 0), NEW.status, 1, coalesce(NEW.duration_s, 0))
    ON CONFLICT ({HOUR_KEY}) DO UPDATE SET n = deliveryhour.n + 1, seconds = deliveryhour.seconds + EXCLUDED.seconds;{"".join(map(_pg_reach_enter, tables[1:]))}
  END IF;
  RETURN NULL;
END $$"""


def _pg_triggers(tables: tuple[str, ...]) -> list[str]:
    changed = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in COUNTED_COLUMNS)
    return [
        _pg_function(tables),
        "CREATE TRIGGER delivery_rollup_insert AFTER INSERT ON delivery FOR EACH ROW EXECUTE FUNCTION "
        "delivery_rollup()",
        "CREATE TRIGGER delivery_rollup_delete AFTER DELETE ON delivery FOR EACH ROW EXECUTE FUNCTION "
        "delivery_rollup()",
        f"CREATE TRIGGER delivery_rollup_update AFTER UPDATE OF {', '.join(COUNTED_COLUMNS)} ON delivery "
        f"FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION delivery_rollup()",
    ]


# --------------------------------------------------------------------------- install, rebuild, check

def install_triggers(connection: Connection, tables: tuple[str, ...] = TABLES) -> None:
    """(Re)create the triggers that keep ``tables`` (a migration names those of its time) for the database."""
    drop_triggers(connection)
    assert tables[0] == "deliveryhour" and set(tables) <= set(TABLES), tables
    postgres = connection.dialect.name == "postgresql"
    for statement in (_pg_triggers(tables) if postgres else _sqlite_triggers(tables)):
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


def _count_reach(table: str) -> str:
    return (f"SELECT {_reach_values(table, 'delivery')}, count(*) AS n, min(created_at) AS first_at, "
            f"max(created_at) AS last_at FROM delivery WHERE {_qualifies('delivery', table)} "
            f"GROUP BY {', '.join(str(i + 1) for i, _ in enumerate(_reach_key(table).split(', ')))}")


def rebuild(connection: Connection, tables: tuple[str, ...] = TABLES) -> None:
    """Recount ``tables`` (default: all) from the log, set-based, in the caller's transaction."""
    for table in tables:
        connection.exec_driver_sql(f"DELETE FROM {table}")
        if table == "deliveryhour":
            connection.exec_driver_sql("INSERT INTO deliveryhour (hour, topic_id, station_id, channel, bulletin_id, "
                                       "campaign_id, status, n, seconds) "
                                       + _COUNT_HOURS.format(hour=_hour_sql(connection)))
        else:
            connection.exec_driver_sql(f"INSERT INTO {table} ({_reach_key(table)}, n, first_at, last_at) "
                                       + _count_reach(table))


def drift(connection: Connection) -> list[str]:
    """What differs between the rollup (all three tables) and a fresh count of the log (empty: they agree)."""
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
    for table in TABLES[1:]:
        width = len(_reach_key(table).split(", "))
        fresh_reach = {tuple(r[:width]): tuple(map(str, r[width:]))
                       for r in connection.execute(text(_count_reach(table)))}
        kept_reach = {tuple(r[:width]): tuple(map(str, r[width:])) for r in connection.execute(text(
            f"SELECT {_reach_key(table)}, n, first_at, last_at FROM {table}"))}
        for key in sorted(set(fresh_reach) | set(kept_reach), key=str):
            if fresh_reach.get(key) != kept_reach.get(key):
                problems.append(f"{table} {key}: log {fresh_reach.get(key)}, rollup {kept_reach.get(key)}")
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
