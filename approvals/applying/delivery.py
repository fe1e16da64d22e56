"""Outgoing HTTP for webhooks and outcome callbacks: JSON bodies, signed, with a timeout.

Redirects are never followed (a 3xx could lead the POST to a host nobody allowed). A webhook
resolves its host once, has the address checked, and connects to that very address, so a second
DNS answer cannot send it elsewhere between the check and the call.
"""

import hashlib
import hmac
import http.client
import json
import socket
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

SIGNATURE_HEADER = "X-Countersign-Signature"


class DeliveryFailed(Exception):
    """The receiver could not be reached or did not answer 2xx. Worth trying again later."""


def json_body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":")).encode()


def signature(*, secret: str, body: bytes) -> str:
    """`sha256=` and the hex HMAC-SHA256 of the exact body bytes, keyed with the shared secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def resolve(*, host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, in the resolver's order. Raises DeliveryFailed."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise DeliveryFailed(f"{host} could not be resolved: {error}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in found))


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to `address` rather than to whatever the host name resolves to now."""

    address = ""

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(http.client.HTTPSConnection, _PinnedHTTPConnection):
    """As above over TLS: the certificate is still checked against the host name (sent as SNI)."""


def _connection(url: str, address: str | None, timeout: float) -> http.client.HTTPConnection:
    split = urlsplit(url)
    secure = split.scheme == "https"
    if address is None:
        plain = http.client.HTTPSConnection if secure else http.client.HTTPConnection
        return plain(split.hostname or "", split.port, timeout=timeout)
    pinned = (_PinnedHTTPSConnection if secure else _PinnedHTTPConnection)(
        split.hostname or "", split.port, timeout=timeout
    )
    pinned.address = address
    return pinned


def post_json(*, url: str, body: bytes, headers: dict[str, str], secret: str = "", address: str | None = None) -> int:
    """POST `body` to `url` (connecting to `address` when given); returns the status code of a 2xx
    answer, raises DeliveryFailed otherwise. Redirects are not followed: a 3xx answer is a failure."""
    split = urlsplit(url)
    if split.scheme not in {"http", "https"} or not split.hostname:
        raise DeliveryFailed(f"'{url[:200]}' is not an http or https URL")
    all_headers = {"Content-Type": "application/json", "User-Agent": "Countersign", **headers}
    if secret:
        all_headers[SIGNATURE_HEADER] = signature(secret=secret, body=body)
    path = split.path or "/"
    target = f"{path}?{split.query}" if split.query else path
    connection = _connection(url, address, float(settings.COUNTERSIGN["HTTP_TIMEOUT_SECONDS"]))
    try:
        connection.request("POST", target, body=body, headers=all_headers)
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as error:
        raise DeliveryFailed(f"{url} could not be reached: {error}") from None
    finally:
        connection.close()
    if not 200 <= status < 300:
        unfollowed = " (redirects are not followed)" if 300 <= status < 400 else ""
        raise DeliveryFailed(f"{url} answered {status}{unfollowed}")
    return status
