"""A fake Google Translate TTS endpoint for the real ``gtts`` library.

gTTS POSTs ``f.req=<url-quoted JSON>&`` to
``https://translate.google.<tld>/_/TranslateWebserverUi/data/batchexecute``
and digs base64 MP3 out of the answer with the regex
``jQ1olc","\\[\\\\"(.*)\\\\"]`` line by line. This fake intercepts at the
``requests`` transport with the ``responses`` library (``HTTPAdapter.send``
is patched), so gTTS's own request building (tokenising, RPC packaging,
headers, ``timeout=``) and answer parsing both run unchanged.

The answer carries real MP3 made from the decoded request text (espeak-ng,
encoded with ffmpeg), so a longer text gives longer audio.

Usage (import the fixture into the test module)::

    from tests.fakes import gtts_fake

    fake_gtts = gtts_fake.fake_gtts

    def test_x(fake_gtts):
        fake_gtts.fail_next(2, status=429)
        ...
        assert fake_gtts.texts == [...]
"""

from __future__ import annotations

import base64
import functools
import json
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
import responses

URL_PATTERN = re.compile(r"^https://translate\.google\.[a-z.]+/_/TranslateWebserverUi/data/batchexecute$")
RPC_ID = "jQ1olc"


# ---------------------------------------------------------------------------
# wire format


@dataclass(frozen=True)
class RpcRequest:
    text: str
    lang: str
    speed: Any  # gTTS sends None for normal speed, True for slow


def decode_request_body(body: str | bytes | None) -> RpcRequest:
    """Decode gTTS's form payload ``f.req=[[["jQ1olc","[text,lang,speed,\\"null\\"]",null,"generic"]]]``."""
    if body is None:
        raise ValueError("empty request body")
    if isinstance(body, bytes):
        body = body.decode("utf-8")
    form = urllib.parse.parse_qs(body, keep_blank_values=True)
    if "f.req" not in form:
        raise ValueError(f"no f.req field in body: {body[:200]!r}")
    rpc = json.loads(form["f.req"][0])
    rpc_id, escaped_parameter, _, _ = rpc[0][0]
    if rpc_id != RPC_ID:
        raise ValueError(f"unexpected rpc id {rpc_id!r}")
    text, lang, speed, _ = json.loads(escaped_parameter)
    return RpcRequest(text=text, lang=lang, speed=speed)


def encode_answer(mp3: bytes) -> str:
    """Build a batchexecute answer shaped like Google's (XSSI prefix, length-prefixed chunks)."""
    b64 = base64.b64encode(mp3).decode("ascii")
    envelope = json.dumps(
        [
            ["wrb.fr", RPC_ID, json.dumps([b64]), None, None, None, "generic"],
            ["di", 57],
            ["af.httprm", 56, "-4170", 9],
        ],
        separators=(",", ":"),
    )
    tail = f'[["e",4,null,null,{len(envelope) + 60}]]'
    return f")]}}'\n\n{len(envelope)}\n{envelope}\n{len(tail)}\n{tail}\n"


def encode_answer_without_audio() -> str:
    """An answer that names the RPC but carries no audio (gTTS raises gTTSError with status 200)."""
    envelope = json.dumps([["wrb.fr", RPC_ID, None, None, None, [3], "generic"]], separators=(",", ":"))
    return f")]}}'\n\n{len(envelope)}\n{envelope}\n"


@functools.lru_cache(maxsize=256)
def render_mp3(text: str, lang: str = "vi") -> bytes:
    """Real MP3 bytes whose duration depends on ``text`` (espeak-ng, else a sine tone)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("the gTTS fake needs ffmpeg to encode MP3")
    encode = [
        ffmpeg,
        "-hide_banner",
        "-loglevel",
        "error",
        "-ac",
        "1",
        "-ar",
        "24000",
        "-codec:a",
        "libmp3lame",
        "-b:a",
        "32k",
        "-f",
        "mp3",
        "pipe:1",
    ]
    espeak = shutil.which("espeak-ng")
    if espeak is not None:
        voice = "vi" if lang.lower().startswith("vi") else lang
        wav = subprocess.run(
            [espeak, "-b", "1", "-v", voice, "--stdout"],
            input=text.encode("utf-8"),
            capture_output=True,
            check=False,
            timeout=30,
        )
        if wav.returncode == 0 and wav.stdout:
            out = subprocess.run(
                [*encode[:4], "-f", "wav", "-i", "pipe:0", *encode[4:]],
                input=wav.stdout,
                capture_output=True,
                check=True,
                timeout=30,
            )
            return out.stdout
    seconds = max(0.3, 0.06 * len(text))
    out = subprocess.run(
        [*encode[:4], "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds:.2f}", *encode[4:]],
        capture_output=True,
        check=True,
        timeout=30,
    )
    return out.stdout


# ---------------------------------------------------------------------------
# controller


@dataclass
class FakeCall:
    text: str
    lang: str
    speed: Any
    url: str
    timeout: Any
    verify: Any
    outcome: str  # "ok", "http 429", "connection error", "timeout", "no audio", ...


_Action = Callable[[Any, RpcRequest], Any]


class FakeGoogleTTS:
    """Controller for the fake endpoint; see the module docstring."""

    def __init__(self, rsps: responses.RequestsMock):
        self._rsps = rsps
        self._lock = threading.Lock()
        self._script: deque[tuple[str, _Action]] = deque()
        self.calls: list[FakeCall] = []
        rsps.add_callback(responses.POST, URL_PATTERN, callback=self._handle)

    # -- what happened ----------------------------------------------------
    @property
    def texts(self) -> list[str]:
        """Every text gTTS asked for, in order, including failed attempts."""
        return [c.text for c in self.calls]

    @property
    def call_count(self) -> int:
        return len(self.calls)

    def reset_calls(self) -> None:
        with self._lock:
            self.calls.clear()

    # -- what happens next ------------------------------------------------
    def fail_next(self, n: int, status: int = 429, retry_after: float | None = None) -> None:
        """Answer the next ``n`` requests with HTTP ``status``."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}

        def action(request, rpc):
            return status, headers, f"<html><title>Error {status}</title></html>"

        self._push(n, f"http {status}", action)

    def connection_error_next(self, n: int) -> None:
        def action(request, rpc):
            raise requests.exceptions.ConnectionError("fake: connection refused")

        self._push(n, "connection error", action)

    def unreachable_next(self, n: int) -> None:
        """As requests fails with no network: the host name cannot be resolved, no connection is made."""
        from urllib3.connection import HTTPSConnection
        from urllib3.exceptions import MaxRetryError, NameResolutionError

        def action(request, rpc):
            host = "translate.google.com.vn"
            reason = NameResolutionError(host, HTTPSConnection(host), OSError("Name or service not known"))
            raise requests.exceptions.ConnectionError(MaxRetryError(None, request.url, reason))

        self._push(n, "unreachable", action)

    def timeout_next(self, n: int) -> None:
        """Behave as if the server hung: the client gets ReadTimeout at once."""

        def action(request, rpc):
            raise requests.exceptions.ReadTimeout("fake: read timed out")

        self._push(n, "timeout", action)

    def hang_next(self, n: int, seconds: float) -> None:
        """Really stall for ``seconds``; past the client's timeout, raise ReadTimeout after waiting it."""

        def action(request, rpc):
            timeout = getattr(request, "req_kwargs", {}).get("timeout")
            read_timeout = timeout[1] if isinstance(timeout, tuple) else timeout
            if read_timeout is not None and seconds > read_timeout:
                time.sleep(read_timeout)
                raise requests.exceptions.ReadTimeout(f"fake: no answer within {read_timeout} s")
            time.sleep(seconds)
            return self._ok(request, rpc)

        self._push(n, "hang", action)

    def no_audio_next(self, n: int) -> None:
        def action(request, rpc):
            return 200, {}, encode_answer_without_audio()

        self._push(n, "no audio", action)

    def _push(self, n: int, label: str, action: _Action) -> None:
        with self._lock:
            for _ in range(n):
                self._script.append((label, action))

    # -- transport --------------------------------------------------------
    def _ok(self, request, rpc: RpcRequest):
        return (
            200,
            {"Content-Type": "application/json; charset=utf-8"},
            encode_answer(render_mp3(rpc.text, rpc.lang)),
        )

    def _handle(self, request):
        rpc = decode_request_body(request.body)
        kwargs = getattr(request, "req_kwargs", {}) or {}
        with self._lock:
            label, action = self._script.popleft() if self._script else ("ok", self._ok)
            self.calls.append(
                FakeCall(
                    text=rpc.text,
                    lang=rpc.lang,
                    speed=rpc.speed,
                    url=request.url,
                    timeout=kwargs.get("timeout"),
                    verify=kwargs.get("verify"),
                    outcome=label,
                )
            )
        return action(request, rpc)


@pytest.fixture
def fake_gtts() -> Iterator[FakeGoogleTTS]:
    """Intercept every ``requests`` call; gTTS's endpoint answers from the fake, anything else fails."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield FakeGoogleTTS(rsps)
