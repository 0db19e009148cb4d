"""A real icecast2 server on a free loopback port, for player tests.

icecast2 refuses to run as root, so when the tests run as root the config
asks it to drop to nobody/nogroup (``<changeowner>``) after binding; its log
folder is then made writable for that user, and the temporary folder
traversable. Use :func:`running_icecast` as a context manager, or the
``icecast`` pytest fixture.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE_PASSWORD = "s3cret-Source-pw"
ADMIN_PASSWORD = "s3cret-Admin-pw"


@dataclass
class IcecastServer:
    host: str
    port: int
    source_password: str
    workdir: Path
    process: subprocess.Popen

    def source_url(self, mount: str = "/bulletin.mp3", password: str | None = None) -> str:
        pw = self.source_password if password is None else password
        return f"icecast://source:{pw}@{self.host}:{self.port}{mount}"

    def listen_url(self, mount: str = "/bulletin.mp3") -> str:
        return f"http://{self.host}:{self.port}{mount}"

    def mount_is_live(self, mount: str = "/bulletin.mp3") -> bool:
        """True once a source is connected to ``mount`` (a listener would get audio)."""
        try:
            with urllib.request.urlopen(self.listen_url(mount), timeout=1) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log(self) -> str:
        parts = []
        for name in ("error.log", "access.log"):
            f = self.workdir / "log" / name
            if f.exists():
                parts.append(f"--- {name}\n{f.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config(port: int, workdir: Path, as_root: bool) -> str:
    web = "/usr/share/icecast2/web"
    admin = "/usr/share/icecast2/admin"
    security = (
        "<security><chroot>0</chroot><changeowner><user>nobody</user><group>nogroup</group>"
        "</changeowner></security>"
        if as_root
        else "<security><chroot>0</chroot></security>"
    )
    return f"""<icecast>
  <location>test</location>
  <admin>test@localhost</admin>
  <limits>
    <clients>20</clients><sources>4</sources><queue-size>524288</queue-size>
    <client-timeout>30</client-timeout><header-timeout>15</header-timeout>
    <source-timeout>10</source-timeout><burst-on-connect>1</burst-on-connect>
    <burst-size>65535</burst-size>
  </limits>
  <authentication>
    <source-password>{SOURCE_PASSWORD}</source-password>
    <relay-password>{ADMIN_PASSWORD}</relay-password>
    <admin-user>admin</admin-user><admin-password>{ADMIN_PASSWORD}</admin-password>
  </authentication>
  <hostname>127.0.0.1</hostname>
  <listen-socket><port>{port}</port><bind-address>127.0.0.1</bind-address></listen-socket>
  <fileserve>1</fileserve>
  <paths>
    <basedir>{workdir}</basedir>
    <logdir>{workdir / "log"}</logdir>
    <webroot>{web}</webroot>
    <adminroot>{admin}</adminroot>
    <alias source="/" destination="/status.xsl"/>
  </paths>
  <logging>
    <accesslog>access.log</accesslog><errorlog>error.log</errorlog>
    <loglevel>3</loglevel><logsize>10000</logsize>
  </logging>
  {security}
</icecast>
"""


@contextmanager
def running_icecast(timeout_s: float = 10.0) -> Iterator[IcecastServer]:
    exe = shutil.which("icecast2") or shutil.which("icecast")
    if not exe:
        pytest.skip("icecast2 is not installed")
    as_root = os.geteuid() == 0
    workdir = Path(tempfile.mkdtemp(prefix="broadcaster-icecast-"))
    try:
        logdir = workdir / "log"
        logdir.mkdir()
        if as_root:
            # After dropping privileges icecast must still reach and write its logs.
            os.chmod(workdir, 0o755)
            os.chown(logdir, pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid)
        port = _free_port()
        config = workdir / "icecast.xml"
        config.write_text(_config(port, workdir, as_root))
        os.chmod(config, 0o644)
        proc = subprocess.Popen(
            [exe, "-c", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        server = IcecastServer("127.0.0.1", port, SOURCE_PASSWORD, workdir, proc)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    raise RuntimeError(f"icecast2 exited with {proc.returncode}: {err}\n{server.log()}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(
                            f"icecast2 did not listen on {port} in {timeout_s}s\n{server.log()}"
                        ) from None
                    time.sleep(0.05)
            yield server
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stderr:
                proc.stderr.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def icecast() -> Iterator[IcecastServer]:
    with running_icecast() as server:
        yield server
