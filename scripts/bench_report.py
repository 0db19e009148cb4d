#!/usr/bin/env python3
"""Time ``broadcaster report`` read from the rollup, counted from the log (the scan), and their bare SQL.

Usage: .venv/bin/python scripts/bench_report.py [--rows 1000000] [--stations 6] [--runs 5] [--rebuild]
                                                [--explain] [--sample 12]

Builds (once, cached in ``.bench/report-<rows>-<stations>-<version>.sqlite``) a database
with the project's real schema (Alembic head) and a year of deliveries for two
2023 plans (8 + 2 topics): commune stations with two slots a day (4 items per
slot; a few late, missed, failed or interrupted) and SMS campaigns to 6,000
contacts that fill the rest (delivered, sent, undelivered, failed, uncertain,
skipped, cancelled, pending). The log is written set-based (``INSERT …
SELECT`` over the slots and the campaigns × contacts, statuses from a hash of
the ids, so a build is the same every time), the rollup triggers set aside
while it is written and the rollup counted afterwards (``rollup.rebuild``, as
the migration does).

A cached database built by an older revision is upgraded to the head first
(as ``broadcaster db upgrade`` would: a new rollup table is counted then).

Prints, for the whole plan, a quarter, a month, one station (whole plan and a
month) and ``--by station``, the median of ``build_report`` from the rollup,
from the log, and the bare SQL each rests on (the difference is Python building
the report); then checks that both give the same report on a random sample of
plans, periods, stations and ``--by station`` reports (``--sample``), and exits
1 if one differs. The load average is printed beside the figures: the machine
is shared.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlmodel import Session  # noqa: E402

from broadcaster import db, reports  # noqa: E402
from broadcaster.reports import rollup  # noqa: E402

PLANS = [("BENCH/KH-UBND", ["CSPL", "CDDH", "TCHC", "TTHC", "BMNN", "CCCV", "TCC", "CDS"]),
         ("BENCH2/KH-UBND", ["PCCC", "ATGT"])]
TOPICS = sum(len(codes) for _, codes in PLANS)
ITEMS = 10 * TOPICS
CONTACTS = 6000
TS = "%Y-%m-%d %H:%M:%S.%f"
YEAR_START = datetime(2022, 12, 31, 17, tzinfo=UTC)  # 2023-01-01 00:00 local
AS_OF = datetime(2023, 11, 15, 3, tzinfo=UTC)
# A pseudo-random number in [0, 100) from a row's ids: the same database on every build.
HASH = "(((({x}) % 1000003) * 2654435761 + 40503) % 4294967291 % 100)"
BUILD_VERSION = 2  # in the cached database's name: a change to ``build`` makes a new one


def _ts(moment: datetime) -> str:
    return moment.strftime(TS)


def build(path: Path, rows: int, stations: int, seed: int = 7) -> None:
    """The schema by Alembic, small tables by executemany, the log set-based; then the rollup counted."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".building")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        leftover.unlink(missing_ok=True)
    engine = db.make_engine(f"sqlite:///{tmp}")
    db.upgrade(engine)
    with engine.begin() as connection:
        rollup.drop_triggers(connection)
    engine.dispose()
    rng = random.Random(seed)
    con = sqlite3.connect(tmp, isolation_level=None)
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("BEGIN")
    now = _ts(YEAR_START)
    topic_id = 0
    for plan_id, (code, topics) in enumerate(PLANS, 1):
        con.execute("INSERT INTO plan (id, code, title, issuer, period_start, period_end, audiences, source, notes, "
                    "created_at) VALUES (?, ?, 'Kế hoạch thử tốc độ', 'UBND', '2023-01-01', '2023-12-31', '[]', "
                    "'', '', ?)", (plan_id, code, now))
        for position, topic in enumerate(topics):
            topic_id += 1
            con.execute("INSERT INTO topic (id, plan_id, code, title, description, position) VALUES (?, ?, ?, ?, '', ?)",
                        (topic_id, plan_id, topic, f"Chủ đề {topic}", position))
            con.executemany("INSERT INTO target (plan_id, topic_id, channel, metric, amount, period, station_id, "
                            "illustrative, note) VALUES (?, ?, ?, ?, ?, ?, ?, 1, '')", [
                                (plan_id, topic_id, "loudspeaker", "broadcasts", 40.0, "month", None),
                                (plan_id, topic_id, "loudspeaker", "airtime_minutes", 300.0, "quarter", None),
                                (plan_id, topic_id, "sms", "sms_sent", 20000.0, "year", None),
                                (plan_id, topic_id, "loudspeaker", "broadcasts", 3.0, "month",
                                 1 + topic_id % stations)])
        con.execute("INSERT INTO target (plan_id, topic_id, channel, metric, amount, period, station_id, illustrative, "
                    "note) VALUES (?, NULL, 'any', 'people_reached', 30000.0, 'plan', NULL, 1, '')", (plan_id,))
    con.executemany(
        "INSERT INTO station (id, code, name, commune, timezone, player, player_options, listeners, created_at) "
        "VALUES (?, ?, ?, '', 'Asia/Ho_Chi_Minh', 'file', '{}', ?, ?)",
        [(i, f"XA-{i:03d}", f"Xã {i}", 1500 + 250 * (i % 9), now) for i in range(1, stations + 1)])
    con.executemany("INSERT INTO contentitem (id, title, topic_id, channels, priority, repeat, status, created_at, "
                    "updated_at) VALUES (?, ?, ?, '[\"loudspeaker\", \"sms\"]', 'normal', 1, 'approved', ?, ?)",
                    [(i, f"Tin {i}", (i - 1) % TOPICS + 1, now, now) for i in range(1, ITEMS + 1)])
    con.executemany("INSERT INTO contact (id, phone, name, village, opt_out_reason, created_at) "
                    "VALUES (?, ?, '', '', '', ?)", [(i, f"+8490{i:07d}", now) for i in range(1, CONTACTS + 1)])
    con.executemany("INSERT INTO schedule (id, name, station_id, channel, cron, length_s, topic_codes, paused, "
                    "created_at, updated_at) VALUES (?, '', ?, 'loudspeaker', '0 6,17 * * *', 900, '[]', 0, ?, ?)",
                    [(i, i, now, now) for i in range(1, stations + 1)])
    # Two slots a day per station (local 06:00 and 17:00), as the daemon writes them.
    con.execute(f"""
        WITH RECURSIVE day(d) AS (SELECT 0 UNION ALL SELECT d + 1 FROM day WHERE d < 364),
             slot(h) AS (VALUES (6), (17))
        INSERT INTO bulletin (id, schedule_id, station_id, channel, kind, slot_time, status, late_s, reason,
                              started_at, created_at, attempts, duration_s)
        SELECT id, s, s, 'loudspeaker', 'slot', t, status,
               CASE WHEN status = 'missed' THEN NULL WHEN {HASH.format(x='id + 7')} < 10
                    THEN 60 + {HASH.format(x='id + 11')} * 8 ELSE 0 END, '', t, t, 1,
               CASE WHEN status = 'missed' THEN NULL ELSE 600 + {HASH.format(x='id + 13')} * 3 END
        FROM (SELECT (d * 2 + (h = 17)) * {stations} + station.id AS id, station.id AS s,
                     strftime('%Y-%m-%d %H:%M:%S.000000', '{YEAR_START:%Y-%m-%d %H:%M:%S}',
                              '+' || d || ' days', '+' || h || ' hours') AS t,
                     CASE WHEN {HASH.format(x='(d * 2 + (h = 17)) * 1000 + station.id')} < 95 THEN 'played'
                          WHEN {HASH.format(x='(d * 2 + (h = 17)) * 1000 + station.id')} < 98 THEN 'missed'
                          ELSE 'interrupted' END AS status
              FROM day, slot, station)""")
    con.execute(f"""
        WITH RECURSIVE part(p) AS (SELECT 0 UNION ALL SELECT p + 1 FROM part WHERE p < 3)
        INSERT INTO delivery (channel, status, plan_id, topic_id, item_id, station_id, bulletin_id, scheduled_for,
                              started_at, duration_s, late_s, attempts, created_at, updated_at)
        SELECT 'loudspeaker', status, (SELECT plan_id FROM topic WHERE topic.id = (item - 1) % {TOPICS} + 1),
               (item - 1) % {TOPICS} + 1, item, station_id, id, slot_time, started_at,
               CASE WHEN status = 'missed' THEN NULL ELSE 60 + {HASH.format(x='id * 4 + p + 5')} * 1.8 END,
               late_s, 1, slot_time, slot_time
        FROM (SELECT b.*, part.p, 1 + {HASH.format(x='b.id * 4 + part.p')} * {ITEMS} / 100 AS item,
                     CASE WHEN b.status != 'played' THEN b.status
                          WHEN {HASH.format(x='b.id * 4 + part.p + 3')} < 2 THEN 'failed' ELSE 'played' END
                     AS status
              FROM bulletin b, part)""")
    loudspeaker = con.execute("SELECT count(*) FROM delivery").fetchone()[0]
    con.execute("CREATE TEMP TABLE send (id INTEGER PRIMARY KEY, item INTEGER, station INTEGER, created TEXT, "
                "size INTEGER)")
    left, sends = max(0, rows - loudspeaker), []
    while left > 0:
        size = min(left, rng.randint(2000, CONTACTS))
        left -= size
        created = YEAR_START + timedelta(seconds=rng.uniform(0, 365 * 86400))
        sends.append((len(sends) + 1, rng.randint(1, ITEMS), rng.choice([None, *range(1, stations + 1)]),
                      _ts(created), size))
    con.executemany("INSERT INTO send VALUES (?, ?, ?, ?, ?)", sends)
    con.execute("INSERT INTO campaign (id, item_id, body, encoding, segments, status, created_at) "
                "SELECT id, item, 'Tin nhắn', 'gsm7', 1, 'done', created FROM send")
    # (contact × 7919 + campaign × 104729) mod 6000 is a permutation of the contacts: exactly `size` per campaign.
    status = HASH.format(x="c.id * 7001 + k.id")
    con.execute(f"""
        INSERT INTO delivery (channel, status, plan_id, topic_id, item_id, station_id, campaign_id, contact_id,
                              recipient, segments, attempts, created_at, updated_at)
        SELECT 'sms', CASE WHEN {status} < 85 THEN 'delivered' WHEN {status} < 90 THEN 'sent'
                           WHEN {status} < 94 THEN 'undelivered' WHEN {status} < 96 THEN 'failed'
                           WHEN {status} < 97 THEN 'uncertain' WHEN {status} < 98 THEN 'skipped'
                           WHEN {status} < 99 THEN 'cancelled' ELSE 'pending' END,
               (SELECT plan_id FROM topic WHERE topic.id = (c.item - 1) % {TOPICS} + 1), (c.item - 1) % {TOPICS} + 1,
               c.item, c.station, c.id, k.id, k.phone, 1, 1, c.created, c.created
        FROM send c JOIN contact k ON (k.id * 7919 + c.id * 104729) % {CONTACTS} < c.size""")
    con.execute("COMMIT")
    con.close()
    engine = db.make_engine(f"sqlite:///{tmp}")
    with engine.begin() as connection:
        rollup.rebuild(connection)
        rollup.install_triggers(connection)
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    tmp.replace(path)


def median_time(func, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(engine, plan: str, period: str | None, station: str | None, runs: int, explain: bool,
            by_station: bool = False) -> list[float]:
    """Median seconds of: the report from the rollup, its bare SQL, the report from the log, its bare SQL.

    ``by_station``: the report with ``--by station``, whose SQL is the plan's and every station's.
    """
    figures = []
    # One session at a time: the engine opens every write transaction with BEGIN IMMEDIATE.
    with Session(engine.execution_options(**{db.READ_ONLY_OPTION: True})) as session:
        stations = [None] + ([code for (code,) in session.connection().exec_driver_sql(
            "SELECT code FROM station ORDER BY code")] if by_station else [])
        for use_rollup in (True, False):
            def report(use_rollup=use_rollup):
                return reports.build_report(session, plan, period, station, as_of=AS_OF, rollup=use_rollup,
                                            by_station=by_station)
            statements = [statement for one in stations for statement in reports.aggregate_statements(
                session, plan, period, one or station, rollup=use_rollup)]

            def bare(statements=statements):
                for statement in statements:
                    session.exec(statement).all()
            figures += [median_time(report, runs), median_time(bare, runs)]
            if explain:
                connection = session.connection()
                for statement in statements:
                    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
                    print("  " + " ".join(str(compiled).split()))
                    for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all():
                        print(f"      {row[-1]}")
    return figures


def check_sample(engine, stations: int, sample: int, seed: int = 16) -> int:
    """Rollup and scan reports compared on random plans, periods and stations; returns how many differed."""
    rng = random.Random(seed)
    differed = 0
    with Session(engine.execution_options(**{db.READ_ONLY_OPTION: True})) as session:
        for _ in range(sample):
            plan = rng.choice(PLANS)[0]
            first = date(2023, 1, 1) + timedelta(days=rng.randrange(300))
            period = rng.choice([None, "2023", f"2023-Q{rng.randint(1, 4)}", f"2023-{rng.randint(1, 12):02d}",
                                 f"{first}..{first + timedelta(days=rng.randrange(1, 60))}"])
            station = rng.choice([None, f"XA-{rng.randint(1, stations):03d}"])
            by_station = station is None and rng.random() < 0.3
            kwargs = {"as_of": AS_OF, "by_station": by_station}
            rolled = reports.build_report(session, plan, period, station, **kwargs).to_dict()
            scanned = reports.build_report(session, plan, period, station, rollup=False, **kwargs).to_dict()
            problems = rollup.report_differences(rolled, scanned)
            print(f"  {plan} {period or 'cả kế hoạch'} {station or ('theo đài' if by_station else 'mọi đài')}: "
                  + ("same" if not problems else f"DIFFERENT: {problems[:3]}"))
            differed += bool(problems)
    return differed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="delivery rows (default 1,000,000)")
    parser.add_argument("--stations", type=int, default=6, help="stations (default 6)")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement; the median is printed")
    parser.add_argument("--sample", type=int, default=12, help="reports compared rollup against scan")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached database")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN QUERY PLAN of each statement")
    args = parser.parse_args(argv)
    path = REPO / ".bench" / f"report-{args.rows}-{args.stations}-{BUILD_VERSION}.sqlite"
    if args.rebuild or not path.exists():
        start = time.perf_counter()
        build(path, args.rows, args.stations)
        print(f"built {path} in {time.perf_counter() - start:.1f} s")
    engine = db.make_engine(f"sqlite:///{path}")
    before, after = db.upgrade(engine)
    if before != after:
        print(f"upgraded {path.name} from {before} to {after}")
    with engine.connect() as connection:
        count = connection.exec_driver_sql("SELECT COUNT(*) FROM delivery").scalar()
        hours = connection.exec_driver_sql("SELECT COUNT(*) FROM deliveryhour").scalar()
        reach = connection.exec_driver_sql("SELECT COUNT(*) FROM deliveryreach").scalar()
    print(f"{path.name}: {count:,} delivery rows; rollup {hours:,} hour rows, {reach:,} reach rows; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    plan = PLANS[0][0]
    cases = [("whole plan", None, None, False), ("2023-Q2", "2023-Q2", None, False),
             ("2023-05", "2023-05", None, False), ("station XA-002", None, "XA-002", False),
             ("XA-002 2023-05", "2023-05", "XA-002", False), ("--by station", None, None, True)]
    print("Medians of --runs; 'its SQL': the aggregate's statements alone, rows fetched (the rest is Python).")
    print(f"{'case':<16} {'rollup':>9} {'its SQL':>9} {'scan':>9} {'its SQL':>9}   (target: whole plan "
          "< 100 ms at 1M rows, < 300 ms at 10M)")
    for label, period, station, by_station in cases:
        runs = max(1, args.runs // 2) if by_station else args.runs
        figures = measure(engine, plan, period, station, runs, args.explain, by_station)
        print(f"{label:<16} " + " ".join(f"{x * 1000:>6.0f} ms" for x in figures)
              + (f"   ({args.stations} stations)" if by_station else ""))
    print(f"rollup = scan on {args.sample} sampled reports:")
    differed = check_sample(engine, args.stations, args.sample)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    engine.dispose()
    if differed:
        print(f"{differed} report(s) differ between rollup and scan")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
