"""Benchmark: the SMS dispatcher (every delivery logged in SQLite) vs. a bare loop of the same Twilio calls.

Both send N messages through the real ``twilio`` client to a loopback
TwilioFake (``tests/fakes/twilio_fake.py``) with the same number of threads,
one client per thread. The dispatcher commits two transactions per message
(``pending → sending`` before the call, ``sent`` + SID after); the bare loop
writes nothing. The ratio is the price of never losing or doubling a message.

    .venv/bin/python scripts/bench_sms.py [--messages 10000] [--concurrency 4]

By default the fake runs in a child process, so only the sending side shares
this process's GIL; ``--fake-in-process`` runs it in a thread here instead
(both loops then compete with the fake's threads; rates drop, the comparison
stays fair because both runs pay it).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
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
from broadcaster.models import ContentItem, ItemStatus  # noqa: E402
from broadcaster.sms.campaigns import create_campaign  # noqa: E402
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


def write_config(path: Path, data_dir: Path, fake: TwilioFake | RemoteFake, concurrency: int) -> None:
    path.write_text(
        f'[broadcaster]\ndata_dir = "{data_dir.as_posix()}"\n\n'
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--fake-in-process", action="store_true", help="serve the fake from a thread here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    to = numbers(args.messages)

    with tempfile.TemporaryDirectory(prefix="bench-sms-") as tmp, running_fake(args.fake_in_process) as fake:
        root = Path(tmp)
        config_path = root / "broadcaster.toml"
        write_config(config_path, root / "data", fake, args.concurrency)
        initialise(config_path)
        app = App.load(config_path)
        with session_scope(app.ready_engine()) as session:
            import_contacts(session, [ContactRow(phone=p, line=i) for i, p in enumerate(to)], ["Bench"])
            item = ContentItem(title="bench", channels=["sms"], status=ItemStatus.APPROVED, sms_text=BODY)
            session.add(item)
            session.flush()
            item_id = item.id

        began = time.perf_counter()
        with session_scope(app.ready_engine()) as session:
            campaign_id = create_campaign(session, item_id, "Bench", config=app.config).id
        create_s = time.perf_counter() - began

        began = time.perf_counter()
        result = dispatch_campaign(app, campaign_id)
        logged_s = time.perf_counter() - began
        if result.counts.get("sent") != args.messages:
            raise SystemExit(f"dispatcher did not send everything: {result.counts}")

        bare_s = bare(fake, to, args.concurrency)
        app.engine.dispose()

    logged_rate = args.messages / logged_s
    bare_rate = args.messages / bare_s
    where = "in this process" if args.fake_in_process else "in a child process"
    print(f"messages: {args.messages}, threads: {args.concurrency}, client: twilio (real) → loopback TwilioFake "
          f"({where})")
    print(f"campaign creation (expand group, {args.messages} pending rows, one transaction): {create_s:.2f} s")
    print(f"dispatcher, every delivery logged in SQLite: {logged_s:6.2f} s  {logged_rate:8.1f} msg/s")
    print(f"bare client loop, no logging:                {bare_s:6.2f} s  {bare_rate:8.1f} msg/s")
    print(f"ratio logged/bare: {logged_rate / bare_rate:.2f}  (overhead {100 * (1 - logged_rate / bare_rate):.0f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

