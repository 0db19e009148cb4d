"""Benchmark: a province on one PostgreSQL — many stations, several daemon processes, one killed.

    .venv/bin/python scripts/bench_province.py [--stations 200] [--daemons 4] [--minutes 10]
        [--recipients 100000] [--admin-url postgresql://postgres@127.0.0.1:5433/postgres]

1. Creates its own database (``province_bench`` on the admin URL's server, dropped and made again), a
   plan, one item for every station, ``--stations`` file-player stations (drop folders) and one
   loudspeaker slot per station every minute.
2. Starts ``--daemons`` daemon processes (``broadcaster daemon``), each with its own config and data
   folder (as on its own PC) and its share of the stations in ``daemon.stations``; espeak-ng speaks.
3. Counts the slots of ``--minutes`` whole minutes: due, aired once, aired twice, missed; lateness
   median and worst. Halfway it kills one daemon with SIGKILL; a standby PC (another data folder) is
   refused its stations while their leases run, starts once they expire, and airs what was missed by
   the catch-up rules. "Aired twice" is counted twice over: airing rows per slot in the log, and files
   in the drop folders (what a speaker would play).
4. An SMS campaign to ``--recipients`` people is created (rows/s) and sent by two dispatcher processes
   at once against a loopback TwilioFake in a child process, which counts every message per number:
   msg/s and duplicates (whatever ``claim_sms`` this branch has).
5. Times ``report --plan CODE --by station`` when this branch has it.

The floors beside the figures are the issue's: 0 aired twice, 0 missed while all daemons run, every
slot accounted for, 0 sent twice. The machine's load is printed with the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from broadcaster.app import App, initialise  # noqa: E402
from broadcaster.db import session_scope  # noqa: E402
from broadcaster.timeutil import utcnow  # noqa: E402

PLAN = ROOT / "examples" / "plans" / "ninh-thuan-2023.toml"
PLAN_CODE = "911/KH-UBND"
FROM = "+15005550006"
CALLBACK = "https://huyen.example.org/sms/status"
DB_NAME = "province_bench"


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def fresh_database(admin_url: str) -> str:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{DB_NAME}"


AUDIO_FORMAT = "mp3"


def write_config(path: Path, *, data_dir: Path, url: str, stations: list[str] = (), sms: str = "") -> Path:
    codes = ", ".join(f'"{code}"' for code in stations)
    path.write_text(
        f'[broadcaster]\ndata_dir = "{data_dir.as_posix()}"\n\n[database]\nurl = "{url}"\n\n'
        f'[audio]\ntts = ["espeak"]\nformat = "{AUDIO_FORMAT}"\n\n[render]\nahead_minutes = 2\n\n'
        '[schedule]\ncatch_up_minutes = 30\nrepeat_gap_hours = 0\n\n'
        f'[daemon]\nheartbeat_seconds = 5\nreload_seconds = 3\nlease_seconds = 30\nstations = [{codes}]\n\n'
        + sms, encoding="utf-8")
    return path


def populate(app: App, stations: int, drops: Path) -> tuple[list[str], int]:
    from broadcaster import plans, schedules
    from broadcaster.models import ContentItem, ContentText, ItemStatus
    from broadcaster.stations import add_station

    codes = [f"XA-{n:03d}" for n in range(1, stations + 1)]
    with session_scope(app.ready_engine()) as session:
        plans.import_plan(session, plans.read_plan_file(PLAN), source=str(PLAN))
        topic = plans.find_topic(session, f"{PLAN_CODE}:TTHC")
        item = ContentItem(title="Một cửa", topic_id=topic.id, channels=["loudspeaker", "sms"],
                           status=ItemStatus.APPROVED, sms_text="UBND xa: nop ho so truc tuyen tai dichvucong.gov.vn")
        session.add(item)
        session.flush()
        session.add(ContentText(item_id=item.id, lang="vi", text="Bà con làm thủ tục tại bộ phận một cửa."))
        for n, code in enumerate(codes, 1):
            add_station(session, code=code, name=f"Xã số {n}", commune=f"Xã {n}", timezone="Asia/Ho_Chi_Minh",
                        player="file", player_options={"drop_dir": str(drops / code)})
            schedules.add_schedule(session, station_code=code, channel="loudspeaker", cron="* * * * *", at=None,
                                   length_s=50)
        return codes, item.id


def start_daemon(config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "broadcaster", "--config", str(config), "daemon"],
                            stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=True)


def holders(app: App) -> Counter:
    from broadcaster.leases import all_leases

    now = utcnow()
    return Counter(lease.holder for lease in all_leases(app.ready_engine()).values() if lease.alive(now))


def held_by(app: App, pid: int) -> int:
    """Stations whose live lease a daemon process holds (holder ``host:pid:instance``)."""
    from broadcaster.leases import all_leases

    now = utcnow()
    return sum(1 for lease in all_leases(app.ready_engine()).values()
               if lease.alive(now) and lease.holder.split(":")[1] == str(pid))


def wait_until(moment: datetime) -> None:
    while (left := (moment - utcnow()).total_seconds()) > 0:
        time.sleep(min(left, 1.0))


def slot_figures(app: App, start: datetime, end: datetime, drops: Path,
                 killed: set[str], killed_at: datetime) -> dict:
    from sqlmodel import select

    from broadcaster import schedules
    from broadcaster.models import Bulletin, Delivery, Schedule, Station

    figures = Counter()
    lateness, lateness_taken_over = [], []
    with app.read_session() as session:
        bulletins = {(b.schedule_id, b.slot_time): b for b in session.exec(select(Bulletin).where(
            Bulletin.slot_time >= start, Bulletin.slot_time < end)).all()}
        airings = Counter(session.exec(select(Delivery.bulletin_id).where(
            Delivery.status.in_(["played", "playing", "interrupted"]))).all())
        for schedule, station in session.exec(select(Schedule, Station).join(Station)).all():
            for moment in schedules.fire_times(schedule, station.timezone, start - timedelta(seconds=1),
                                               end - timedelta(seconds=1)):
                if moment < start:
                    continue
                figures["due"] += 1
                after_kill = station.code in killed and moment >= killed_at
                bulletin = bulletins.get((schedule.id, moment))
                status = bulletin.status if bulletin else "no row"
                figures[f"status {status}"] += 1
                times = airings.get(bulletin.id, 0) if bulletin else 0
                if times == 1 and status == "played":
                    figures["aired once"] += 1
                    (lateness_taken_over if after_kill else lateness).append(bulletin.late_s or 0.0)
                elif times > 1:
                    figures["aired twice"] += 1
                else:
                    figures["missed, killed daemon's stations" if after_kill else "missed, all daemons up"] += 1
        played_total = len(session.exec(select(Bulletin.id).where(Bulletin.status == "played")).all())
    files = sum(1 for path in drops.rglob("*") if path.is_file() and not path.name.startswith("."))
    figures["files dropped"] = files
    figures["bulletins played (all time)"] = played_total
    return {"counts": figures, "lateness": lateness, "lateness_taken_over": lateness_taken_over}


# --------------------------------------------------------------------------------------------- SMS


def _serve_counting_fake(conn, stop) -> None:  # noqa: ANN001 - child process entry point
    from tests.fakes.twilio_fake import TwilioFake

    per_number: Counter = Counter()
    with TwilioFake() as fake:
        conn.send((fake.base_url, fake.account_sid, fake.auth_token))
        while not stop.wait(0.5):
            for request in fake.requests:
                if request["method"] == "POST" and request["path"].endswith("/Messages.json"):
                    per_number[request["form"].get("To")] += 1
            fake.clear_requests()
        for request in fake.requests:
            if request["method"] == "POST" and request["path"].endswith("/Messages.json"):
                per_number[request["form"].get("To")] += 1
    conn.send(dict(per_number))


def _dispatch(config: str, campaign_id: int, out) -> None:  # noqa: ANN001 - child process entry point
    from broadcaster.sms.dispatcher import dispatch_campaign

    began = time.perf_counter()
    result = dispatch_campaign(App.load(config), campaign_id)
    out.send((time.perf_counter() - began, dict(result.counts)))


def sms_campaign(root: Path, url: str, recipients: int, item_id: int) -> dict:
    from sqlalchemy import insert, select

    from broadcaster.models import Contact, ContactGroup, ContactGroupMember
    from broadcaster.sms.campaigns import create_campaign

    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    parent, child = ctx.Pipe()
    fake = ctx.Process(target=_serve_counting_fake, args=(child, stop), daemon=True)
    fake.start()
    base_url, sid, token = parent.recv()
    sms = (f'[sms]\nbackend = "twilio"\nquiet_hours = "off"\nrate_per_second = 0.0\nconcurrency = 4\n'
           f'retry_backoff = 0.01\nstatus_callback_url = "{CALLBACK}"\n\n[sms.twilio]\naccount_sid = "{sid}"\n'
           f'auth_token = "{token}"\nfrom_number = "{FROM}"\napi_base_url = "{base_url}"\ntimeout = 30.0\n')
    configs = [write_config(root / f"dispatcher-{n}.toml", data_dir=root / f"dispatcher-{n}", url=url, sms=sms)
               for n in (1, 2)]
    app = App.load(configs[0])
    phones = [f"+8491{n:07d}" for n in range(1, recipients + 1)]
    began = time.perf_counter()
    with session_scope(app.ready_engine()) as session:  # set-up, not measured against a floor: bulk rows
        group = ContactGroup(name="Toàn huyện")
        session.add(group)
        session.flush()
        conn = session.connection()
        conn.execute(insert(Contact.__table__), [{"phone": p, "name": "", "village": "", "opt_out_reason": "",
                                                  "created_at": utcnow()} for p in phones])
        ids = conn.execute(select(Contact.__table__.c.id)).scalars().all()
        conn.execute(insert(ContactGroupMember.__table__), [{"contact_id": i, "group_id": group.id} for i in ids])
    contacts_s = time.perf_counter() - began
    began = time.perf_counter()
    with session_scope(app.ready_engine()) as session:
        campaign_id = create_campaign(session, item_id, "Toàn huyện", config=app.config).id
    create_s = time.perf_counter() - began
    pipes, workers = [], []
    began = time.perf_counter()
    for config in configs:
        receive, send = ctx.Pipe(duplex=False)
        worker = ctx.Process(target=_dispatch, args=(str(config), campaign_id, send))
        worker.start()
        pipes.append(receive)
        workers.append(worker)
    results = [pipe.recv() for pipe in pipes]
    for worker in workers:
        worker.join()
    send_s = time.perf_counter() - began
    stop.set()
    per_number = parent.recv()
    fake.join(10)
    from sqlmodel import func, select

    from broadcaster.models import Delivery

    with app.read_session() as session:
        states = dict(session.exec(select(Delivery.status, func.count()).where(
            Delivery.campaign_id == campaign_id).group_by(Delivery.status)).all())
    return {"contacts_s": contacts_s, "create_s": create_s, "send_s": send_s, "results": results,
            "requests": sum(per_number.values()), "numbers": len(per_number),
            "duplicates": sum(n - 1 for n in per_number.values() if n > 1), "states": states}


def time_report(config: Path) -> str:
    help_text = subprocess.run([sys.executable, "-m", "broadcaster", "--config", str(config), "report", "--help"],
                               capture_output=True, text=True).stdout
    if "--by" not in help_text:
        return "report --by station: not on this branch (skipped)"
    began = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "broadcaster", "--config", str(config), "report", "--plan",
                           PLAN_CODE, "--by", "station", "--format", "csv"], capture_output=True, text=True)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        return f"report --by station: FAILED in {elapsed:.1f} s: {(done.stderr or done.stdout).strip()[-300:]}"
    return f"report --plan {PLAN_CODE} --by station --format csv: {elapsed:.1f} s, {len(done.stdout.splitlines())} lines"


# -------------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5433/postgres")
    parser.add_argument("--stations", type=int, default=200)
    parser.add_argument("--daemons", type=int, default=4)
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--format", choices=["mp3", "wav"], default="mp3",
                        help="bulletin audio format (wav spares the CPU the MP3 encoder on a small machine)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (its path is printed)")
    args = parser.parse_args()
    global AUDIO_FORMAT
    AUDIO_FORMAT = args.format
    print(f"start: {load()}", flush=True)
    url = fresh_database(args.admin_url)
    with contextlib.ExitStack() as stack:
        root = Path(tempfile.mkdtemp(prefix="bench-province-")) if args.keep else \
            Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-province-")))
        drops = root / "drops"
        main_config = write_config(root / "district.toml", data_dir=root / "district", url=url)
        initialise(main_config)
        app = App.load(main_config)
        codes, item_id = populate(app, args.stations, drops)
        share = -(-len(codes) // args.daemons)
        groups = [codes[i:i + share] for i in range(0, len(codes), share)]
        configs = [write_config(root / f"pc-{n}.toml", data_dir=root / f"pc-{n}", url=url, stations=group)
                   for n, group in enumerate(groups)]
        processes = [start_daemon(config, root / f"pc-{n}.log") for n, config in enumerate(configs)]
        standby: subprocess.Popen | None = None
        try:
            began = time.monotonic()
            while sum(holders(app).values()) < len(codes):
                if time.monotonic() - began > 300 or any(p.poll() is not None for p in processes):
                    raise SystemExit("daemons did not start:\n" + (root / "pc-0.log").read_text()[-2000:])
                time.sleep(1)
            started_s = time.monotonic() - began
            now = utcnow()
            start = (now + timedelta(minutes=1)).replace(second=0, microsecond=0)
            end = start + timedelta(minutes=args.minutes)
            # 10 s before a slot: the lease outlives it, so the standby airs it late by the catch-up rules
            killed_at = start + timedelta(minutes=max(1, args.minutes // 2), seconds=-10)
            print(f"{len(processes)} daemons serve {len(codes)} stations ({started_s:.0f} s to start, "
                  f"{AUDIO_FORMAT} bulletins); counting "
                  f"slots {start:%H:%M}–{end:%H:%M} UTC, kill -9 of pc-0 at {killed_at:%H:%M:%S}", flush=True)
            wait_until(killed_at)
            os.killpg(processes[0].pid, signal.SIGKILL)
            processes[0].wait()
            killed_moment = utcnow()
            standby_config = write_config(root / "standby.toml", data_dir=root / "standby", url=url,
                                          stations=groups[0])
            refusal = ""
            while True:  # as systemd's Restart= would: start again until the stations are free
                standby = start_daemon(standby_config, root / "standby.log")
                while standby.poll() is None and held_by(app, standby.pid) < len(groups[0]):
                    time.sleep(0.5)
                if standby.poll() is None:
                    break
                refusal = refusal or next((line for line in (root / "standby.log").read_text().splitlines()
                                           if "served by another daemon" in line), "")
                time.sleep(3)  # RestartSec
            taken_over_s = (utcnow() - killed_moment).total_seconds()
            print(f"pc-0 killed at {killed_moment:%H:%M:%S}; standby refused while the leases ran:\n  "
                  f"{refusal.split(' / ')[-1].strip() or '(no refusal seen)'}", flush=True)
            print(f"standby holds all {len(groups[0])} stations {taken_over_s:.0f} s after the kill "
                  f"(lease 30 s, heartbeat 5 s)", flush=True)
            wait_until(end + timedelta(seconds=50))  # the last minute's slots finish
            mid_load = load()
        finally:
            for process in [*processes, standby]:
                if process is not None and process.poll() is None:
                    os.killpg(process.pid, signal.SIGTERM)
            for process in [*processes, standby]:
                if process is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(60)
        figures = slot_figures(app, start, end, drops, set(groups[0]), killed_moment)
        counts = figures["counts"]
        print(f"during the run: {mid_load}")
        print(f"slots due: {counts['due']}  ({len(codes)} stations × {args.minutes} min)")
        print(f"aired once: {counts['aired once']}   aired twice: {counts['aired twice']}  (floor 0)")
        missed_after_kill = counts["missed, killed daemon's stations"]
        print(f"missed while all daemons ran: {counts['missed, all daemons up']}  (floor 0); missed at the killed "
              f"daemon's stations after the kill: {missed_after_kill}")
        print("every due slot in the log: " + ", ".join(f"{k[7:]} {v}" for k, v in sorted(counts.items())
                                                       if k.startswith("status ")))
        print(f"files in drop folders: {counts['files dropped']} for {counts['bulletins played (all time)']} "
              f"bulletins played in all (one file per airing)")
        for label, values in (("all daemons up", figures["lateness"]),
                              ("taken over", figures["lateness_taken_over"])):
            if values:
                print(f"lateness, {label}: median {statistics.median(values):.2f} s, worst {max(values):.2f} s "
                      f"({len(values)} slots)")
        print(time_report(main_config), flush=True)
        if args.recipients:
            sms = sms_campaign(root, url, args.recipients, item_id)
            print(f"SMS: {args.recipients} contacts written (bulk set-up) in {sms['contacts_s']:.1f} s; campaign rows "
                  f"created in "
                  f"{sms['create_s']:.1f} s = {args.recipients / sms['create_s']:.0f} rows/s")
            print(f"SMS: two dispatchers sent in {sms['send_s']:.1f} s = {sms['requests'] / sms['send_s']:.0f} msg/s; "
                  f"each: " + "; ".join(f"{s:.0f} s {json.dumps(c)}" for s, c in sms["results"]))
            print(f"SMS: the fake received {sms['requests']} messages for {sms['numbers']} numbers: "
                  f"{sms['duplicates']} duplicates (floor 0); log: {json.dumps(sms['states'])}")
        app.engine.dispose()
        print(f"end: {load()}")
        if args.keep:
            print(f"work folder: {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
