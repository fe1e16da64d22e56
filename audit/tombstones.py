"""Tombstones: what the purge leaves of each artifact, and how the trail vouches for them.

Each purge batch writes its tombstones and then one chained `artifacts.purged` event naming the
batch, its tombstone ids and the digest of their content; verifying the chain checks the digest.
"""

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from audit.models import AuditEvent, Tombstone


def json_time(moment: datetime) -> str:
    """A time as the trail's JSON holds times: UTC, to the millisecond."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# A tombstone's columns, in the order the purge writes them and its digest covers them.
TOMBSTONE_FIELDS = (
    "artifact_id", "workflow_slug", "proposal_id", "rule_id", "kind", "bucket", "name",
    "sha256", "size", "had_file", "copied_from", "expires_at", "purged_at",
)  # fmt: skip


def tombstones_digest(rows: Iterable[Sequence[Any]]) -> str:
    """The sha256 of tombstones (their `TOMBSTONE_FIELDS` values, in id order), as a purge event holds it."""
    digest = hashlib.sha256()
    for values in rows:
        line = [
            json_time(value) if isinstance(value, datetime) else str(value) if isinstance(value, uuid.UUID) else value
            for value in values
        ]
        digest.update(json.dumps(line, separators=(",", ":")).encode())
        digest.update(b"\n")
    return digest.hexdigest()


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
