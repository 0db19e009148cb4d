"""Build the Twilio REST client the product uses.

Twilio's Python library (9.x) builds every request URL as
``<domain base_url>/<version>/<path>``; the Messages API lives in the ``api``
domain, whose ``base_url`` is ``https://api.twilio.com``
(``twilio.rest.api.ApiBase``). The domain object is created lazily on first
access of ``client.api`` and cached on the client, and ``Domain.absolute_url``
reads ``base_url`` at request time. So pointing the client at another server
(a loopback fake in tests, a recording proxy) is one attribute on a public
object: ``client.api.base_url = "http://127.0.0.1:PORT"``. Only the Messages
API (``client.messages`` / ``client.api.v2010.account.messages``) is
redirected; other Twilio domains (messaging, lookups …) keep their hosts.

Things the library does that the product must know about:

* its default HTTP client (``TwilioHttpClient``) has **no timeout** (requests
  wait forever), so :func:`make_twilio_client` always sets one;
* it does **not retry** anything: a 429 or 5xx is raised at once as
  ``TwilioRestException`` (``.status``, ``.code``), a timeout or refused
  connection as ``requests.exceptions.RequestException``. After a read
  timeout on a create, the message may have been accepted: retrying blindly
  can send it twice;
* ``TWILIO_EDGE`` / ``TWILIO_REGION`` in the environment make it rewrite the
  host name (``api.<edge>.<region>.twilio.com``), which would mangle an IP
  address; a custom base URL therefore switches that rewriting off;
* ``requests`` honours ``HTTP(S)_PROXY`` / ``NO_PROXY`` from the environment.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

__all__ = ["DEFAULT_API_BASE_URL", "DEFAULT_TIMEOUT_S", "RememberingHttpClient", "make_twilio_client"]

DEFAULT_API_BASE_URL = "https://api.twilio.com"
DEFAULT_TIMEOUT_S = 30.0


class RememberingHttpClient(TwilioHttpClient):
    """Twilio's HTTP client that keeps the last answer's headers (``Retry-After`` after a 429)."""

    last_headers: dict[str, str] = {}

    def request(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201 - the library's signature
        self.last_headers = {}
        response = super().request(*args, **kwargs)
        self.last_headers = dict(response.headers or {})
        return response


def _check_base_url(api_base_url: str) -> str:
    parts = urlsplit(api_base_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"sms.twilio.api_base_url phải là URL http(s) đầy đủ / must be an absolute http(s) URL, "
            f"got {api_base_url!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError(f"sms.twilio.api_base_url must not have a query or fragment: {api_base_url!r}")
    return api_base_url.rstrip("/")


def make_twilio_client(
    account_sid: str,
    auth_token: str,
    api_base_url: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    http_client: TwilioHttpClient | None = None,
) -> Client:
    """A ``twilio.rest.Client`` for ``account_sid``/``auth_token``.

    ``api_base_url`` (``sms.twilio.api_base_url`` in the configuration) replaces
    ``https://api.twilio.com`` for the Messages API, e.g.
    ``http://127.0.0.1:8099``; a path prefix is kept
    (``http://host/prefix`` → ``http://host/prefix/2010-04-01/...``). ``None``
    or the default URL leaves the production host alone.

    ``timeout`` (seconds, > 0) applies to every request (connect and read);
    it is ignored if an ``http_client`` is passed in.
    """
    if timeout is None or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if http_client is None:
        http_client = RememberingHttpClient(timeout=timeout)
    client = Client(account_sid, auth_token, http_client=http_client)
    if api_base_url and api_base_url.rstrip("/") != DEFAULT_API_BASE_URL:
        client.api.base_url = _check_base_url(api_base_url)
        # Edge/region host rewriting only makes sense for *.twilio.com.
        client.edge = None
        client.region = None
    return client
