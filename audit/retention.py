"""What is kept, and for how long: expiries that follow their rule, and the purge that leaves tombstones.

Rules live in `approvals`; this module knows them only by the plain ids and labels an Artifact row
carries (`rule_id`, `workflow_slug`), so the trail can outlive the rules too.
"""

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import DateTimeField, ExpressionWrapper, F
from django.utils import timezone

from audit.models import Artifact, Tombstone
from audit.services import Actor, EventData, audit_record_many
from audit.tombstones import TOMBSTONE_FIELDS, tombstones_digest

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
    return (
        row["id"],
        row["workflow_slug"],
        row["proposal_id"],
        row["rule_id"],
        row["kind"],
        row["bucket"],
        row["name"],
        row["sha256"],
        row["size"],
        bool(row["file"]),
        row["copied_from"],
        row["expires_at"],
        purged_at,
    )


def _write_tombstones(values: list[tuple[Any, ...]], batch: uuid.UUID) -> tuple[int, int]:
    """Insert one tombstone per purged artifact, in order; returns the first and last id given."""
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        table = Tombstone._meta.db_table
        columns = ", ".join(quote(name) for name in ("id", "batch", *TOMBSTONE_FIELDS))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, len(values)]
            )
            ids = sorted(row[0] for row in cursor.fetchall())
            with cursor.cursor.copy(f"COPY {quote(table)} ({columns}) FROM STDIN") as copy:
                for new_id, row in zip(ids, values, strict=True):
                    copy.write_row((new_id, batch, *row))
        return ids[0], ids[-1]
    made = Tombstone.objects.bulk_create(
        [Tombstone(batch=batch, **dict(zip(TOMBSTONE_FIELDS, row, strict=True))) for row in values], batch_size=500
    )
    return made[0].pk, made[-1].pk


def _purge_event(values: list[tuple[Any, ...]], batch: uuid.UUID, ids: tuple[int, int], at: datetime) -> EventData:
    """The chained event that vouches for a batch's tombstones: which they are, how many, and their digest."""
    by_rule: dict[str, int] = {}
    slugs = set()
    for row in values:
        slug, kind, bucket = row[1], row[4], row[5]
        slugs.add(slug)
        label = f"{slug} {kind}/{bucket}"
        by_rule[label] = by_rule.get(label, 0) + 1
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
            "rules": by_rule,
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


def _take_expired(*, now: datetime, since: datetime, batch_size: int) -> list[dict[str, Any]]:
    """Delete up to `batch_size` artifacts that expired between `since` and `now`, soonest first, and
    return what they were.

    Rows another transaction holds are skipped, not waited for. On PostgreSQL this is one statement.
    Starting each batch where the last one ended keeps the index scan off the entries already deleted.
    """
    if connection.vendor == "postgresql":
        quote = connection.ops.quote_name
        table = quote(Artifact._meta.db_table)
        column_of = {field.attname: str(field.column) for field in Artifact._meta.concrete_fields}
        returning = ", ".join(quote(column_of[name]) for name in _PURGED_COLUMNS)
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN (SELECT id FROM {table} "  # noqa: S608
                "WHERE expires_at >= %s AND expires_at <= %s ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED) "
                f"RETURNING {returning}",
                [since, now, batch_size],
            )
            return [dict(zip(_PURGED_COLUMNS, values, strict=True)) for values in cursor.fetchall()]
    rows = list(
        Artifact.objects.filter(expires_at__gte=since, expires_at__lte=now)
        .order_by("expires_at")
        .select_for_update(skip_locked=True)
        .values(*_PURGED_COLUMNS)[:batch_size]
    )
    Artifact.objects.filter(pk__in=[row["id"] for row in rows]).delete()
    return rows


def _purge_batch(*, now: datetime, since: datetime, batch_size: int) -> tuple[int, int, datetime]:
    """Purge up to `batch_size` expired artifacts in one short transaction.

    Returns how many, how many stored files they had, and the latest expiry among them."""
    with transaction.atomic():
        rows = _take_expired(now=now, since=since, batch_size=batch_size)
        if not rows:
            return 0, 0, since
        purged_at = timezone.now()
        batch = uuid.uuid4()
        values = [_tombstone_values(row, purged_at) for row in rows]
        ids = _write_tombstones(values, batch)
        # The chain lock is taken last, so the batch holds it only from the append to the commit.
        audit_record_many([_purge_event(values, batch, ids, purged_at)])
        names = [row["file"] for row in rows if row["file"]]
        if names:
            transaction.on_commit(lambda: _delete_files(names))
    return len(rows), len(names), max(row["expires_at"] for row in rows)


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
