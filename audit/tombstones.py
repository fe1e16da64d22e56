"""Tombstones: what the purge leaves of each artifact, and how the trail vouches for them.

Each purge batch writes its tombstones and then one chained `artifacts.purged` event naming the
batch, its tombstone ids and the digest of their content; verifying the chain checks the digest.
"""

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from audit.models import AuditEvent, Tombstone

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


# A tombstone's columns, in the order the purge writes them and its digest covers them.
TOMBSTONE_FIELDS = (
    "artifact_id", "workflow_slug", "proposal_id", "rule_id", "kind", "bucket", "name",
    "sha256", "size", "had_file", "copied_from", "expires_at", "purged_at",
)  # fmt: skip


def _uuid_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _microseconds(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


# How the digest writes each column: ids as text, times as whole microseconds since 1970 UTC (as the
# database keeps them), everything else as it is.
_CANONICAL = [
    _uuid_text if name in ("artifact_id", "copied_from") else _microseconds if name.endswith("_at") else None
    for name in TOMBSTONE_FIELDS
]


def tombstones_digest(rows: Iterable[Sequence[Any]]) -> str:
    """The sha256 of tombstones (their `TOMBSTONE_FIELDS` values, in id order), as a purge event holds
    it: of one JSON list with a list per tombstone."""
    canonical = [
        [value if write is None else write(value) for value, write in zip(row, _CANONICAL, strict=True)] for row in rows
    ]
    return hashlib.sha256(json.dumps(canonical, separators=(",", ":")).encode()).hexdigest()


def tombstones_verify(event: AuditEvent) -> str | None:
    """What is wrong with the tombstones a purge event vouches for, or None when they match it."""
    details = event.details if isinstance(event.details, dict) else {}
    try:
        batch, count = details["batch"], details["count"]
        first, last, expected = details["first_tombstone"], details["last_tombstone"], details["tombstones_sha256"]
    except KeyError as missing:
        return f"the purge event does not say {missing}"
    rows = list(
        Tombstone.objects.filter(pk__gte=first, pk__lte=last, batch=batch).order_by("pk").values_list(*TOMBSTONE_FIELDS)
    )
    if len(rows) != count:
        return f"it vouches for {count} tombstones and {len(rows)} are there"
    if tombstones_digest(rows) != expected:
        return "its tombstones do not match the digest it holds (one was altered)"
    return None
