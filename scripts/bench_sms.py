"""Benchmark: the SMS dispatcher (every delivery logged) vs. a bare loop of the same Twilio calls.

Both send N messages through the real ``twilio`` client to a loopback
TwilioFake (``tests/fakes/twilio_fake.py``) with the same number of threads,
one client per thread. The dispatcher claims rows in durable batches
(``synchronous=FULL`` on SQLite) before the calls and writes the results in
group commits; the bare loop writes nothing. The ratio is the price of never
losing or doubling a message. The database holds a contact table of
``--contacts`` people (the claim's cost must not depend on it); the campaign
sent is a group of ``--messages`` of them. Then a campaign to every contact is
created (one transaction) and timed, and its memory measured: the growth of
the process's peak RSS while creating it, beside the same for a campaign a
tenth of the size (flat = memory does not grow with the campaign).

    .venv/bin/python scripts/bench_sms.py [--messages 10000] [--contacts 100000] [--concurrency 4] [--runs 3]
    .venv/bin/python scripts/bench_sms.py --database-url postgresql://postgres@127.0.0.1:5433/smsperf_bench

Medians of ``--runs`` runs, logged and bare alternating, with the machine's
load average printed before and after. By default the fake runs in a child
process, so only the sending side shares this process's GIL;
``--fake-in-process`` runs it in a thread here instead.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from broadcaster.app import App, initialise  # noqa: E402
from broadcaster.contacts import ContactRow, import_contacts  # noqa: E402
from broadcaster.db import session_scope  # noqa: E402
from broadcaster.deliveries import cancel_campaign  # noqa: E402
from broadcaster.models import ContentItem, ItemStatus  # noqa: E402
from broadcaster.sms.campaigns import open_campaign, open_campaigns  # noqa: E402
from broadcaster.sms.dispatcher import dispatch_campaign  # noqa: E402
from broadcaster.sms.twilio_client import make_twilio_client  # noqa: E402
from tests.fakes.twilio_fake import TwilioFake  # noqa: E402

FROM = "+15005550006"
CALLBACK = "https://xa.example.org/sms/status"
BODY = "UBND xa thong bao: tu 01/7 tiep nhan ho so thu tuc hanh chinh truc tuyen tai dichvucong.gov.vn"


def numbers(count: int) -> list[str]:
    return [f"+8491{n:07d}" for n in range(1, count + 1)]


class RemoteFake:
    """A TwilioFake served by a child process (same account, token and answers)."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        parent, child = ctx.Pipe()
        self._process = ctx.Process(target=_serve_fake, args=(child, self._stop), daemon=True)
        self._process.start()
        self.base_url, self.account_sid, self.auth_token = parent.recv()

    def close(self) -> None:
        self._stop.set()
        self._process.join(10)


def _serve_fake(conn, stop) -> None:  # noqa: ANN001 - child process entry point
    with TwilioFake() as fake:
        conn.send((fake.base_url, fake.account_sid, fake.auth_token))
        while not stop.wait(0.5):
            fake.clear_requests()  # keep the child's memory flat


@contextlib.contextmanager
def running_fake(in_process: bool):
    if in_process:
        with TwilioFake() as fake:
            yield fake
        return
    remote = RemoteFake()
    try:
        yield remote
    finally:
        remote.close()


def write_config(path: Path, data_dir: Path, fake: TwilioFake | RemoteFake, concurrency: int,
                 database_url: str | None = None) -> None:
    database = f'[database]\nurl = "{database_url}"\n\n' if database_url else ""
    path.write_text(
        f'[broadcaster]\ndata_dir = "{data_dir.as_posix()}"\n\n{database}'
        f'[sms]\nbackend = "twilio"\nquiet_hours = ""\nrate_per_second = 0.0\nconcurrency = {concurrency}\n'
        f'retry_backoff = 0.01\nstatus_callback_url = "{CALLBACK}"\n\n'
        f'[sms.twilio]\naccount_sid = "{fake.account_sid}"\nauth_token = "{fake.auth_token}"\n'
        f'from_number = "{FROM}"\napi_base_url = "{fake.base_url}"\ntimeout = 30.0\n',
        encoding="utf-8")


def bare(fake: TwilioFake | RemoteFake, to: list[str], concurrency: int) -> float:
    """The same client calls, same threads, no database. Returns seconds."""
    work = iter(to)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker() -> None:
        client = make_twilio_client(fake.account_sid, fake.auth_token, fake.base_url, timeout=30.0)
        while True:
            with lock:
                number = next(work, None)
            if number is None:
                return
            try:
                client.messages.create(to=number, from_=FROM, body=BODY, status_callback=CALLBACK)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
                return

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"bare loop failed: {errors[0]!r}")
    return elapsed


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> bool:
    """Linux: set the peak RSS back to the current RSS (``clear_refs`` 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def create_timed(app: App, item_id: int, group: str, *, cancel: bool = True) -> tuple[float, int, int]:
    """(seconds, rows, peak RSS growth in KiB) of creating one new campaign to ``group``.

    ``cancel``: the campaign is cancelled afterwards (untimed), so the next call creates a new one
    instead of resuming it."""
    import gc

    gc.collect()
    reset_peak_rss()
    before = peak_rss_kib()
    began = time.perf_counter()
    with session_scope(app.ready_engine()) as session:
        opening = open_campaign(session, item_id, group, config=app.config, again=True)
    elapsed = time.perf_counter() - began
    grown = peak_rss_kib() - before
    if not opening.created:
        raise SystemExit(f"campaign {opening.campaign.id} was resumed, not created")
    if cancel:
        cancel_campaign(app.ready_engine(), opening.campaign.id)
    return elapsed, opening.recipients, grown


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", help="an empty database (default: SQLite in a temporary folder)")
    parser.add_argument("--fake-in-process", action="store_true", help="serve the fake from a thread here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    contacts = max(args.contacts, args.messages)
    everyone = numbers(contacts)
    to = everyone[:args.messages]
    print(f"before: {load()}")

    with tempfile.TemporaryDirectory(prefix="bench-sms-") as tmp, running_fake(args.fake_in_process) as fake:
        root = Path(tmp)
        config_path = root / "broadcaster.toml"
        write_config(config_path, root / "data", fake, args.concurrency, args.database_url)
        initialise(config_path)
        app = App.load(config_path)
        began = time.perf_counter()
        with session_scope(app.ready_engine()) as session:
            import_contacts(session, [ContactRow(phone=p, line=i, groups=["Bench"] if i < args.messages else [])
                                      for i, p in enumerate(everyone)], ["Commune"])
            item = ContentItem(title="bench", channels=["sms"], status=ItemStatus.APPROVED, sms_text=BODY)
            session.add(item)
            session.flush()
            item_id = item.id
        import_s = time.perf_counter() - began

        logged, bare_runs, logged_cpu, bare_cpu = [], [], [], []
        for _ in range(args.runs):
            _, rows, _ = create_timed(app, item_id, "Bench", cancel=False)
            with session_scope(app.ready_engine()) as session:
                campaign_id = max(c.id for c in open_campaigns(session))
            began, cpu = time.perf_counter(), time.process_time()
            result = dispatch_campaign(app, campaign_id)
            logged.append(time.perf_counter() - began)
            logged_cpu.append(time.process_time() - cpu)
            if result.counts.get("sent") != args.messages or rows != args.messages:
                raise SystemExit(f"dispatcher did not send everything: {result.counts}")
            cpu = time.process_time()
            bare_runs.append(bare(fake, to, args.concurrency))
            bare_cpu.append(time.process_time() - cpu)

        small = [create_timed(app, item_id, "Bench") for _ in range(args.runs)]
        large = [create_timed(app, item_id, "Commune") for _ in range(args.runs)]
        peak_resets = reset_peak_rss()
        app.engine.dispose()

    logged_s, bare_s = statistics.median(logged), statistics.median(bare_runs)
    logged_rate, bare_rate = args.messages / logged_s, args.messages / bare_s
    where = "in this process" if args.fake_in_process else "in a child process"
    database = "PostgreSQL" if args.database_url else "SQLite (WAL; claims synchronous=FULL)"
    print(f"database: {database}; contacts: {contacts} (imported in {import_s:.2f} s)")
    print(f"messages: {args.messages}, threads: {args.concurrency}, client: twilio (real) → loopback TwilioFake "
          f"({where}); medians of {args.runs} runs")
    print(f"dispatcher, every delivery logged: {logged_s:6.2f} s  {logged_rate:8.1f} msg/s")
    print(f"bare client loop, no logging:      {bare_s:6.2f} s  {bare_rate:8.1f} msg/s")
    print(f"ratio logged/bare: {logged_rate / bare_rate:.2f}  (floor: 0.90)")
    per_message = [1e6 * statistics.median(runs) / args.messages for runs in (logged_cpu, bare_cpu)]
    print(f"CPU of this process per message: logged {per_message[0]:.0f} µs, bare {per_message[1]:.0f} µs "
          f"(the logging's own cost: {per_message[0] - per_message[1]:.0f} µs; steadier than the ratio when "
          "the machine is loaded)")
    for label, runs in ((f"{args.messages}", small), (f"{contacts}", large)):
        print(f"campaign creation, {label:>7} recipients: {statistics.median(r[0] for r in runs):6.2f} s  "
              f"(floor: 5 s at 100000)  peak RSS growth {statistics.median(r[2] for r in runs) / 1024:6.1f} MiB")
    if not peak_resets:
        print("(peak RSS could not be reset on this system: the growth figures are not meaningful)")
    print(f"after: {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
