"""Anchors: signed checkpoints of the chain's head, kept outside the database.

Whoever owns the database can turn the append-only triggers off, edit an event and recompute every
later hash, or cut the newest events off; the chain alone then still verifies. An anchor names the
head at a moment (event id, hash, how many events up to it, when), signed with `AUDIT_ANCHOR_KEY` (a
key the database never sees, not `SECRET_KEY`), and is appended to sinks outside the database: a
JSON-lines file under the var directory, and optionally an HTTP endpoint or syslog. A rewritten or
shortened chain no longer matches the anchors written before the rewrite.
"""

import hashlib
import hmac
import json
import logging
import logging.handlers
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from audit.models import AuditEvent

SINKS = ("file", "http", "syslog")
_SIGNED_KEYS = ("event_id", "hash", "count", "at")


@dataclass(frozen=True)
class Anchor:
    event_id: int
    hash: str
    count: int
    at: str  # ISO 8601, UTC

    def signed_content(self) -> bytes:
        return json.dumps(
            {"event_id": self.event_id, "hash": self.hash, "count": self.count, "at": self.at},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()

    def signature(self, key: str) -> str:
        return hmac.new(key.encode(), self.signed_content(), hashlib.sha256).hexdigest()

    def line(self, key: str) -> str:
        body = {"event_id": self.event_id, "hash": self.hash, "count": self.count, "at": self.at}
        return json.dumps({**body, "signature": self.signature(key)}, sort_keys=True, separators=(",", ":"))


def anchor_sinks() -> list[str]:
    """The sinks `AUDIT_ANCHOR_SINKS` names (comma-separated); an unknown name is refused, naming it."""
    names = [name.strip() for name in str(settings.AUDIT_ANCHOR_SINKS).split(",") if name.strip()]
    for name in names:
        if name not in SINKS:
            raise ImproperlyConfigured(f"AUDIT_ANCHOR_SINKS: unknown sink {name!r} (expected {', '.join(SINKS)})")
    if "http" in names and not settings.AUDIT_ANCHOR_URL:
        raise ImproperlyConfigured("AUDIT_ANCHOR_SINKS names http, but AUDIT_ANCHOR_URL is not set")
    return names


def _write_file(line: str) -> None:
    path = Path(settings.AUDIT_ANCHOR_FILE)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Append mode: every write lands after what is there, never over it.
    with path.open("a", encoding="utf-8") as sink:
        sink.write(line + "\n")
        sink.flush()


def _write_http(line: str) -> None:
    request = urllib.request.Request(  # noqa: S310 (the operator's own URL)
        settings.AUDIT_ANCHOR_URL,
        data=line.encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=settings.COUNTERSIGN["HTTP_TIMEOUT_SECONDS"]) as response:  # noqa: S310
        response.read()


def _syslog_address() -> str | tuple[str, int]:
    address = str(settings.AUDIT_ANCHOR_SYSLOG_ADDRESS)
    if ":" in address and not address.startswith("/"):
        host, port = address.rsplit(":", 1)
        return host, int(port)
    return address


def _write_syslog(line: str) -> None:
    handler = logging.handlers.SysLogHandler(
        address=_syslog_address(), facility=logging.handlers.SysLogHandler.LOG_AUTH
    )
    try:
        handler.emit(logging.makeLogRecord({"msg": f"countersign-audit-anchor {line}", "levelno": logging.INFO}))
    finally:
        handler.close()


_WRITERS = {"file": _write_file, "http": _write_http, "syslog": _write_syslog}


def _last_anchored_path() -> Path:
    return Path(settings.AUDIT_ANCHOR_FILE).with_suffix(".head")


def _last_anchored_id() -> int | None:
    try:
        return int(_last_anchored_path().read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def anchor_write() -> Anchor | None:
    """Sign the chain's head and append it to every sink. None when the chain is empty or its head
    has not moved since the last anchor."""
    head = AuditEvent.objects.order_by("-id").values_list("id", "hash").first()
    if head is None or head[0] == _last_anchored_id():
        return None
    event_id, event_hash = head
    count = AuditEvent.objects.filter(id__lte=event_id).count()
    anchor = Anchor(
        event_id=event_id,
        hash=event_hash,
        count=count,
        at=timezone.now().astimezone(UTC).isoformat(timespec="milliseconds"),
    )
    line = anchor.line(settings.AUDIT_ANCHOR_KEY)
    for sink in anchor_sinks():
        _WRITERS[sink](line)
    # Only once every sink has it: a sink that failed gets the anchor again at the next run.
    _last_anchored_path().write_text(f"{event_id}\n")
    return anchor


@dataclass(frozen=True)
class AnchorBreak:
    line: int
    at: str
    event_id: int | None
    problem: str

    def __str__(self) -> str:
        named = f"anchor on line {self.line}" + (f" ({self.at})" if self.at else "")
        return f"{named}: {self.problem}"


@dataclass(frozen=True)
class _Parsed:
    line: int
    anchor: Anchor


def _parse(path: Path, key: str) -> Iterator[_Parsed | AnchorBreak]:
    with path.open(encoding="utf-8") as lines:
        for number, text in enumerate(lines, start=1):
            if not text.strip():
                continue
            try:
                raw: dict[str, Any] = json.loads(text)
                anchor = Anchor(
                    event_id=int(raw["event_id"]), hash=str(raw["hash"]), count=int(raw["count"]), at=str(raw["at"])
                )
                signature = str(raw["signature"])
            except (ValueError, KeyError, TypeError):
                yield AnchorBreak(number, "", None, "the line is not an anchor (it was edited or damaged)")
                continue
            if set(raw) != {*_SIGNED_KEYS, "signature"} or not hmac.compare_digest(signature, anchor.signature(key)):
                yield AnchorBreak(
                    number, anchor.at, anchor.event_id, "its signature does not match (the anchor was edited)"
                )
                continue
            yield _Parsed(number, anchor)


def anchors_verify(*, path: Path | None = None, key: str | None = None) -> tuple[int, list[AnchorBreak]]:
    """Check every anchor in the file against the trail: its signature, that the event it names
    still exists with the anchored hash, and that as many events lead up to it as when it was written.

    Returns how many anchors were checked and what is wrong, in file order. Walks the trail's ids and
    hashes once, whatever the number of anchors.
    """
    path = path or Path(settings.AUDIT_ANCHOR_FILE)
    key = key or settings.AUDIT_ANCHOR_KEY
    breaks: list[AnchorBreak] = []
    parsed: list[_Parsed] = []
    for item in _parse(path, key):
        if isinstance(item, AnchorBreak):
            breaks.append(item)
        else:
            parsed.append(item)
    checked = len(parsed) + len(breaks)
    count = 0
    found: dict[int, tuple[str, int]] = {}
    wanted = {item.anchor.event_id for item in parsed}
    for event_id, event_hash in AuditEvent.objects.order_by("id").values_list("id", "hash").iterator(chunk_size=5000):
        count += 1
        if event_id in wanted:
            found[event_id] = (event_hash, count)
    for item in parsed:
        anchor = item.anchor
        if anchor.event_id not in found:
            problem = (
                f"it names event #{anchor.event_id}, which no longer exists "
                f"(the newest events were cut off, or events were removed)"
            )
        else:
            stored_hash, stored_count = found[anchor.event_id]
            if stored_hash != anchor.hash:
                problem = (
                    f"event #{anchor.event_id} no longer has the anchored hash "
                    "(events were edited and the chain recomputed)"
                )
            elif stored_count != anchor.count:
                problem = (
                    f"{stored_count} event(s) lead up to event #{anchor.event_id}, "
                    f"the anchor counted {anchor.count} (events were removed)"
                )
            else:
                continue
        breaks.append(AnchorBreak(item.line, anchor.at, anchor.event_id, problem))
    breaks.sort(key=lambda item: item.line)
    return checked, breaks
