"""Queueing approved proposals again: the sweeper, which finds what waited too long, and retries
after a delay. The database is the truth and a message only a nudge."""

import logging
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from approvals.applying.results import ApplyResult, Outcome
from approvals.applying.selectors import proposals_ready_to_apply_query, stale_cutoff
from approvals.jobs import apply_queue
from approvals.models import (
    Proposal,
)

logger = logging.getLogger(__name__)

MAX_RETRY_DELAY_SECONDS = 600


def _settings_number(name: str) -> float:
    return float(settings.COUNTERSIGN[name])


def apply_sweep(*, stale_seconds: float | None = None) -> list[int]:
    """Queue approved proposals that have waited longer than `stale_seconds` and that nothing holds,
    each at most once per `stale_seconds`.

    A message lost with a broker, or a worker killed before it acknowledged, leaves its proposals
    approved; this finds them. Queueing one twice does no harm (applying is idempotent), but queueing
    the whole backlog at every run, while the workers are behind or absent, would grow the queue
    without end: so each is stamped when queued, and queued again only once a stale window has
    passed since. With `stale_seconds=0` (after a stop switch is released) every one that may apply
    now is queued. A fixed number of queries and one UPDATE, however large the backlog.
    """
    if stale_seconds is None:
        stale_seconds = _settings_number("APPLY_STALE_AFTER_SECONDS")
    now = timezone.now()
    cutoff = stale_cutoff(seconds=stale_seconds, now=now)
    with transaction.atomic():
        ready = proposals_ready_to_apply_query(updated_before=cutoff, nudged_before=cutoff)
        ids = _nudge(ready, at=now)
        if ids:
            logger.info("sweeper: queueing %d approved proposal(s)", len(ids))
            apply_queue(proposal_ids=ids)
    return ids


def _nudge(proposals: QuerySet[Proposal], *, at: datetime) -> list[int]:
    """Stamp `nudged_at` on these proposals and return their ids, in one UPDATE ... RETURNING.
    One a worker holds locked is being applied right now: it is skipped, not waited for."""
    if proposals.query.is_empty():  # a global stop switch: nothing to ask the database
        return []
    select, params = (
        proposals.select_for_update(skip_locked=True, of=("self",))
        .order_by()
        .values("pk")
        .query.get_compiler(connection=connection)
        .as_sql()
    )
    quote = connection.ops.quote_name
    meta, field = Proposal._meta, Proposal._meta.get_field("nudged_at")
    pk = quote(str(meta.get_field("id").column))
    # Built only from the model's own table and column names and Django's compiled query; values are parameters.
    sql = f"UPDATE {quote(meta.db_table)} SET {quote(str(field.column))} = %s WHERE {pk} IN ({select}) RETURNING {pk}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [field.get_db_prep_save(at, connection), *params])
        return sorted(row_id for (row_id,) in cursor.fetchall())


def apply_retry_later(*, results: Iterable[ApplyResult]) -> list[int]:
    """Queue again, after a delay, the proposals that failed for now, could not see the switches, or
    were held up by the database or the task's time (these after the first delay: they did not fail)."""
    base = _settings_number("APPLY_RETRY_SECONDS")
    retry: dict[float, list[int]] = {}
    for result in results:
        if result.outcome in (Outcome.RETRY, Outcome.BLOCKED, Outcome.DEFERRED):
            delay = min(base * 2 ** max(result.attempts - 1, 0), MAX_RETRY_DELAY_SECONDS)
            retry.setdefault(delay, []).append(result.proposal_id)
    for delay, ids in retry.items():
        apply_queue(proposal_ids=ids, countdown=delay)
    return [pk for ids in retry.values() for pk in ids]
