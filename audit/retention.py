"""What is kept, and for how long: expiries that follow their rule, and the purge that leaves tombstones.

Rules live in `approvals`; this module knows them only by the plain ids and labels an Artifact row
carries (`rule_id`, `workflow_slug`), so the trail can outlive the rules too.
"""

import logging
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F
from django.utils import timezone

from audit.models import Artifact, Tombstone
from audit.services import Actor, EventData, audit_record_many
from audit.tombstones import TOMBSTONE_FIELDS, tombstones_digest
from core.roundtrip import built_once

logger = logging.getLogger(__name__)

PURGE_ACTOR = Actor.system("retention purge")
_PURGED_COLUMNS = (
    "id", "workflow_slug", "proposal_id", "rule_id", "kind", "bucket", "name",
    "file", "sha256", "size", "expires_at", "copied_from",
)  # fmt: skip


@dataclass
class PurgeReport:
    """What one purge run did."""

    purged: int = 0
    batches: int = 0
    files: int = 0
    seconds: float = 0.0
    longest_batch_seconds: float = 0.0


def artifacts_shorten_for_rule(*, rule_id: int, window: timedelta) -> int:
    """Bring every artifact kept under `rule_id` within `window` of its creation. Never lengthens one.

    Returns how many artifacts now expire sooner.
    """
    deadline = ExpressionWrapper(F("created_at") + window, output_field=DateTimeField())
    return Artifact.objects.filter(rule_id=rule_id, expires_at__gt=deadline).update(expires_at=deadline)


def _tombstone_values(row: dict[str, Any], purged_at: datetime) -> tuple[Any, ...]:
    """An artifact's row (`_PURGED_COLUMNS`) as its tombstone's `TOMBSTONE_FIELDS` values."""
    values = {**row, "artifact_id": row["id"], "had_file": bool(row["file"]), "purged_at": purged_at}
    return tuple(values[name] for name in TOMBSTONE_FIELDS)


def _purge_event(values: list[tuple[Any, ...]], batch: uuid.UUID, ids: tuple[int, int], at: datetime) -> EventData:
    """The chained event that vouches for a batch's tombstones: which they are, how many, and their digest."""
    slug, kind, bucket = (TOMBSTONE_FIELDS.index(name) for name in ("workflow_slug", "kind", "bucket"))
    by_rule = Counter(f"{row[slug]} {row[kind]}/{row[bucket]}" for row in values)
    slugs = {row[slug] for row in values}
    return EventData(
        action="artifacts.purged",
        actor=PURGE_ACTOR,
        workflow_slug=slugs.pop() if len(slugs) == 1 else "",
        occurred_at=at,
        details={
            "batch": str(batch),
            "count": len(values),
            "first_tombstone": ids[0],
            "last_tombstone": ids[1],
            "tombstones_sha256": tombstones_digest(values),
            "rules": dict(by_rule),
        },
    )


def _delete_files(names: list[str]) -> None:
    storage = Artifact._meta.get_field("file").storage  # type: ignore[attr-defined]
    for name in names:
        try:
            storage.delete(name)
        except OSError:
            # The row and its tombstone are already committed; a file left behind is logged, not fatal.
            logger.exception("could not delete the stored file %s of a purged artifact", name)


def _take_expired(
    *, now: datetime, since: datetime, batch_size: int, batch: uuid.UUID, purged_at: datetime
) -> tuple[list[tuple[Any, ...]], list[str]]:
    """Turn up to `batch_size` artifacts that expired between `since` and `now`, soonest first, into
    tombstones of `batch`. Returns the tombstones (their id, then `TOMBSTONE_FIELDS`) in id order, and
    the names of the stored files the artifacts had.

    Rows another transaction holds are skipped, not waited for. On PostgreSQL this is one statement,
    and the rows never leave the database on their way from artifact to tombstone. Starting each batch
    where the last one ended keeps the index scan off the entries already deleted.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(built_once("purge: artifacts to tombstones", _take_expired_sql), [
                since, now, batch_size, batch, purged_at,
            ])  # fmt: skip
            found = cursor.fetchall()
        return [row[:-1] for row in found], [row[-1] for row in found if row[-1]]
    artifacts = list(
        Artifact.objects.filter(expires_at__gte=since, expires_at__lte=now)
        .order_by("expires_at")
        .select_for_update(skip_locked=True)
        .values(*_PURGED_COLUMNS)[:batch_size]
    )
    if not artifacts:
        return [], []
    Artifact.objects.filter(pk__in=[row["id"] for row in artifacts]).delete()
    values = [_tombstone_values(row, purged_at) for row in artifacts]
    made = Tombstone.objects.bulk_create(
        [Tombstone(batch=batch, **dict(zip(TOMBSTONE_FIELDS, row, strict=True))) for row in values], batch_size=500
    )
    return [(tombstone.pk, *row) for tombstone, row in zip(made, values, strict=True)], [
        row["file"] for row in artifacts if row["file"]
    ]


def _take_expired_sql() -> str:
    quote = connection.ops.quote_name
    artifacts, tombstones = quote(Artifact._meta.db_table), quote(Tombstone._meta.db_table)
    taken = ", ".join(quote(name) for name in _PURGED_COLUMNS)
    written = ", ".join(quote(name) for name in TOMBSTONE_FIELDS)
    copied = {
        "artifact_id": "id",
        "had_file": f"{quote('file')} <> ''",
        "purged_at": "%s",
    }
    source = ", ".join(copied.get(name, quote(name)) for name in TOMBSTONE_FIELDS)
    # Built only from the models' own table and column names; every value is a parameter.
    return (
        f"WITH gone AS (DELETE FROM {artifacts} WHERE id IN (SELECT id FROM {artifacts} "  # noqa: S608
        "WHERE expires_at >= %s AND expires_at <= %s ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED) "
        f"RETURNING {taken}), "
        f"kept AS (INSERT INTO {tombstones} (batch, {written}) SELECT %s, {source} FROM gone "
        f"ORDER BY expires_at, id RETURNING id, {written}) "
        f"SELECT kept.*, gone.{quote('file')} FROM kept JOIN gone ON gone.id = kept.artifact_id ORDER BY kept.id"
    )


def _purge_batch(*, now: datetime, since: datetime, batch_size: int) -> tuple[int, int, datetime]:
    """Purge up to `batch_size` expired artifacts in one short transaction.

    Returns how many, how many stored files they had, and the latest expiry among them."""
    with transaction.atomic():
        purged_at = timezone.now()
        batch = uuid.uuid4()
        rows, names = _take_expired(now=now, since=since, batch_size=batch_size, batch=batch, purged_at=purged_at)
        if not rows:
            return 0, 0, since
        values = [row[1:] for row in rows]
        # The chain lock is taken last, so the batch holds it only from the append to the commit.
        audit_record_many([_purge_event(values, batch, (rows[0][0], rows[-1][0]), purged_at)])
        if names:
            transaction.on_commit(lambda: _delete_files(names))
    expiry = TOMBSTONE_FIELDS.index("expires_at")
    return len(rows), len(names), max(row[expiry] for row in values)


def artifacts_purge_expired(*, batch_size: int = 1000, now: datetime | None = None) -> PurgeReport:
    """Delete every artifact that expired by `now`, in batches, each leaving one tombstone per
    artifact and one chained event that vouches for the batch's tombstones.

    Batches lock their rows with SKIP LOCKED, so two purges running at once share the work instead of
    waiting on each other, and a purge never waits on a request that holds an artifact. Running it again
    finds nothing left to do. Stored files are deleted once the batch that purged their rows commits.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    now = now or timezone.now()
    report = PurgeReport()
    started = time.perf_counter()
    since = datetime.min.replace(tzinfo=UTC)
    while True:
        batch_started = time.perf_counter()
        purged, files, since = _purge_batch(now=now, since=since, batch_size=batch_size)
        if not purged:
            break
        report.purged += purged
        report.files += files
        report.batches += 1
        report.longest_batch_seconds = max(report.longest_batch_seconds, time.perf_counter() - batch_started)
        if purged < batch_size:
            break
    report.seconds = time.perf_counter() - started
    return report
