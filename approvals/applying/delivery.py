"""Outgoing HTTP for webhooks and outcome callbacks: JSON bodies, signed, with a timeout."""

import hashlib
import hmac
import json
import urllib.error
import urllib.request
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


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could lead the POST to a host nobody allowed, so a 3xx answer is a failure."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post_json(*, url: str, body: bytes, headers: dict[str, str], secret: str = "") -> int:
    """POST `body` to `url`; returns the status code of a 2xx answer, raises DeliveryFailed otherwise.

    Redirects are not followed: a 3xx answer is a failure like any other.
    """
    if urlsplit(url).scheme not in {"http", "https"}:
        raise DeliveryFailed(f"'{url[:200]}' is not an http or https URL")
    all_headers = {"Content-Type": "application/json", "User-Agent": "Countersign", **headers}
    if secret:
        all_headers[SIGNATURE_HEADER] = signature(secret=secret, body=body)
    request = urllib.request.Request(url, data=body, headers=all_headers, method="POST")  # noqa: S310 - scheme checked above
    timeout = float(settings.COUNTERSIGN["HTTP_TIMEOUT_SECONDS"])
    try:
        with _opener.open(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        unfollowed = " (redirects are not followed)" if 300 <= error.code < 400 else ""
        raise DeliveryFailed(f"{url} answered {error.code}{unfollowed}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise DeliveryFailed(f"{url} could not be reached: {getattr(error, 'reason', error)}") from None
