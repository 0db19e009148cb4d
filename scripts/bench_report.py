#!/usr/bin/env python3
"""Time ``broadcaster report`` over a large delivery log.

Usage: .venv/bin/python scripts/bench_report.py [--rows 1000000] [--runs 5] [--rebuild] [--explain]
                                                [--proposed-index]

Builds (once, cached in ``.bench/report-<rows>.sqlite``) a database with the
project's real schema (Alembic head) and a realistic year of deliveries for
one 2023 plan: 8 topics, 6 commune stations with two slots a day (about 4
items per slot, a few late, missed, failed or interrupted), and SMS campaigns
to 6,000 contacts that fill the rest (delivered, sent, undelivered, failed,
uncertain, skipped, and some still pending). Rows are inserted with
``executemany`` in one transaction.

Then prints the median time of ``build_report`` for the whole plan, one
quarter, one month and one station, each beside the median time of the bare
SQL aggregate the report rests on (``--explain``: and the query plans of those
statements). ``--proposed-index`` runs on a copy where ``ix_delivery_report``
also carries ``recipient`` (``PROPOSED_INDEX``), which makes the
people-reached query covering.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlmodel import Session  # noqa: E402

from broadcaster import db, reports  # noqa: E402

PLAN_CODE = "BENCH/KH-UBND"
TOPICS = ["CSPL", "CDDH", "TCHC", "TTHC", "BMNN", "CCCV", "TCC", "CDS"]
STATIONS = 6
CONTACTS = 6000
TS = "%Y-%m-%d %H:%M:%S.%f"
PROPOSED_INDEX = ("DROP INDEX ix_delivery_report",
                  "CREATE INDEX ix_delivery_report ON delivery (topic_id, channel, status, created_at, recipient)")
LOCAL = timedelta(hours=7)


def _ts(moment: datetime) -> str:
    return moment.strftime(TS)


def _pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    roll = rng.random()
    for value, weight in weighted:
        roll -= weight
        if roll <= 0:
            return value
    return weighted[-1][0]


def build(path: Path, rows: int, seed: int = 7) -> None:
    """Create the schema with Alembic, then fill it with raw executemany in one transaction."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".building")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        leftover.unlink(missing_ok=True)
    engine = db.make_engine(f"sqlite:///{tmp}")
    db.upgrade(engine)
    engine.dispose()
    rng = random.Random(seed)
    con = sqlite3.connect(tmp, isolation_level=None)
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("BEGIN")
    now = _ts(datetime(2023, 1, 1, tzinfo=UTC))
    con.execute("INSERT INTO plan (id, code, title, issuer, period_start, period_end, audiences, source, notes, "
                "created_at) VALUES (1, ?, 'Kế hoạch thử tốc độ', 'UBND', '2023-01-01', '2023-12-31', '[]', "
                "'', '', ?)", (PLAN_CODE, now))
    con.executemany("INSERT INTO topic (id, plan_id, code, title, description, position) VALUES (?, 1, ?, ?, '', ?)",
                    [(i, code, f"Chủ đề {code}", i) for i, code in enumerate(TOPICS, 1)])
    con.executemany(
        "INSERT INTO station (id, code, name, commune, timezone, player, player_options, listeners, created_at) "
        "VALUES (?, ?, ?, '', 'Asia/Ho_Chi_Minh', 'file', '{}', ?, ?)",
        [(i, f"XA-{i:02d}", f"Xã {i}", 1500 + 250 * i, now) for i in range(1, STATIONS + 1)])
    targets = [(1, t, "loudspeaker", "broadcasts", 40.0, "month", None) for t in range(1, 9)]
    targets += [(1, t, "loudspeaker", "airtime_minutes", 300.0, "quarter", None) for t in range(1, 9)]
    targets += [(1, t, "sms", "sms_sent", 20000.0, "year", None) for t in range(1, 9)]
    targets += [(1, 4, "loudspeaker", "broadcasts", 10.0, "month", 2), (1, None, "any", "people_reached",
                                                                        30000.0, "plan", None)]
    con.executemany("INSERT INTO target (plan_id, topic_id, channel, metric, amount, period, station_id, "
                    "illustrative, note) VALUES (?, ?, ?, ?, ?, ?, ?, 1, '')", targets)
    con.executemany("INSERT INTO contentitem (id, title, topic_id, channels, priority, repeat, status, created_at, "
                    "updated_at) VALUES (?, ?, ?, '[\"loudspeaker\", \"sms\"]', 'normal', 1, 'approved', ?, ?)",
                    [(i, f"Tin {i}", (i - 1) % 8 + 1, now, now) for i in range(1, 81)])
    con.executemany("INSERT INTO contact (id, phone, name, village, opt_out_reason, created_at) "
                    "VALUES (?, ?, '', '', '', ?)",
                    [(i, f"+8490{i:07d}", now) for i in range(1, CONTACTS + 1)])
    con.executemany("INSERT INTO schedule (id, name, station_id, channel, cron, length_s, topic_codes, paused, "
                    "created_at, updated_at) VALUES (?, '', ?, 'loudspeaker', '0 6,17 * * *', 900, '[]', 0, ?, ?)",
                    [(i, i, now, now) for i in range(1, STATIONS + 1)])
    year_start = datetime(2022, 12, 31, 17, tzinfo=UTC)  # 2023-01-01 00:00 local
    bulletins, deliveries = [], []
    bulletin_id = 0
    for day in range(365):
        for hour in (6, 17):
            for station in range(1, STATIONS + 1):
                bulletin_id += 1
                slot = year_start + timedelta(days=day, hours=hour)
                status = _pick(rng, [("played", 0.95), ("missed", 0.03), ("interrupted", 0.02)])
                late = rng.choice([0.0] * 9 + [rng.uniform(60, 900)]) if status != "missed" else None
                started = slot + timedelta(seconds=late or 0)
                bulletins.append((bulletin_id, station, station, _ts(slot), status, late,
                                  _ts(started), _ts(slot - timedelta(minutes=30))))
                for _ in range(4):
                    item = rng.randint(1, 80)
                    item_status = status if status != "played" else _pick(rng, [("played", 0.98), ("failed", 0.02)])
                    duration = rng.uniform(60, 240) if item_status != "missed" else None
                    deliveries.append((
                        "loudspeaker", item_status, 1, (item - 1) % 8 + 1, item, station, bulletin_id, None, None,
                        None, _ts(slot), _ts(started), duration, late, None, _ts(started), _ts(started)))
    con.executemany("INSERT INTO bulletin (id, schedule_id, station_id, channel, kind, slot_time, status, late_s, "
                    "reason, started_at, created_at) VALUES (?, ?, ?, 'loudspeaker', 'slot', ?, ?, ?, '', ?, ?)",
                    bulletins)
    sms_rows = max(0, rows - len(deliveries))
    campaigns, campaign_id = [], 0
    while sms_rows > 0:
        campaign_id += 1
        size = min(sms_rows, rng.randint(2000, CONTACTS))
        sms_rows -= size
        item = rng.randint(1, 80)
        created = year_start + timedelta(seconds=rng.uniform(0, 365 * 86400))
        station = rng.choice([None, *range(1, STATIONS + 1)])
        campaigns.append((campaign_id, item, "Tin nhắn", _ts(created)))
        for contact in rng.sample(range(1, CONTACTS + 1), size):
            status = _pick(rng, [("delivered", 0.85), ("sent", 0.05), ("undelivered", 0.04), ("failed", 0.03),
                                 ("uncertain", 0.01), ("skipped", 0.01), ("pending", 0.01)])
            deliveries.append((
                "sms", status, 1, (item - 1) % 8 + 1, item, station, None, campaign_id, contact,
                f"+8490{contact:07d}", None, None, None, None, 1, _ts(created), _ts(created)))
    con.executemany("INSERT INTO campaign (id, item_id, body, encoding, segments, status, created_at) "
                    "VALUES (?, ?, ?, 'gsm7', 1, 'done', ?)", campaigns)
    con.executemany(
        "INSERT INTO delivery (channel, status, plan_id, topic_id, item_id, station_id, bulletin_id, campaign_id, "
        "contact_id, recipient, scheduled_for, started_at, duration_s, late_s, segments, attempts, created_at, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)", deliveries)
    con.execute("COMMIT")
    con.execute("ANALYZE")
    con.close()
    tmp.replace(path)


def median_time(func, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="delivery rows (default 1,000,000)")
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement; the median is printed")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached database")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN QUERY PLAN of each statement")
    parser.add_argument("--proposed-index", action="store_true",
                        help="measure on a copy with ix_delivery_report extended by recipient")
    args = parser.parse_args(argv)
    path = REPO / ".bench" / f"report-{args.rows}.sqlite"
    if args.rebuild or not path.exists():
        start = time.perf_counter()
        build(path, args.rows)
        print(f"built {path} in {time.perf_counter() - start:.1f} s")
    if args.proposed_index:
        variant = path.with_name(f"report-{args.rows}-proposed.sqlite")
        if args.rebuild or not variant.exists() or variant.stat().st_mtime < path.stat().st_mtime:
            tmp = variant.with_suffix(".building")
            shutil.copyfile(path, tmp)
            con = sqlite3.connect(tmp)
            for statement in PROPOSED_INDEX:
                con.execute(statement)
            con.execute("ANALYZE")
            con.commit()
            con.close()
            tmp.replace(variant)
        path = variant
    engine = db.make_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        count = connection.exec_driver_sql("SELECT COUNT(*) FROM delivery").scalar()
    print(f"{path.name}: {count:,} delivery rows")
    as_of = datetime(2023, 11, 15, 3, tzinfo=UTC)
    cases = [("whole plan", None, None), ("2023-Q2", "2023-Q2", None), ("2023-05", "2023-05", None),
             ("station XA-02", None, "XA-02")]
    print(f"{'case':<16} {'report':>10} {'bare SQL':>10}")
    for label, period, station in cases:
        # One session at a time: the engine opens every transaction with BEGIN IMMEDIATE.
        with Session(engine) as session:
            def report(session=session, period=period, station=station):
                return reports.build_report(session, PLAN_CODE, period, station, as_of=as_of)
            report_s = median_time(report, args.runs)
            statements = reports.aggregate_statements(session, PLAN_CODE, period, station)

            def bare(session=session, statements=statements):
                for statement in statements:
                    session.exec(statement).all()
            sql_s = median_time(bare, args.runs)
            if args.explain:
                connection = session.connection()
                for statement in statements:
                    compiled = statement.compile(engine, compile_kwargs={"literal_binds": True})
                    plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
                    print("  " + " ".join(str(compiled).split()))
                    for row in plan:
                        print(f"      {row[-1]}")
        print(f"{label:<16} {report_s * 1000:>8.0f} ms {sql_s * 1000:>7.0f} ms")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
