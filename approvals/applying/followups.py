"""Follow-ups: outbox rows made when a change is applied, held so an undo can cancel them, then
each delivered at most once, and never while a stop switch covers its proposal.

A run claims due rows for a while (`FOLLOWUP_CLAIM_SECONDS`), skipping those a stop switch holds
(they wait, saying why, and run after the release). Right before its handler runs, a row is marked
started under that claim, once the stop switches are read again; a stop engaged since the claim
puts it back to wait. A claim that ends before its row was started only lets another run take it;
a row started is never taken again, since the customer may already have it. If the run that
started it never reports back within `FOLLOWUP_UNKNOWN_AFTER_SECONDS` (far beyond any send's
timeout), its outcome is recorded as unknown, and it is not sent again.
"""

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from approvals.applying.delivery import json_body, post_json, resolve
from approvals.applying.followup_content import CannotRender, email_content, webhook_content
from approvals.models import FollowUp, FollowUpKind, FollowUpStatus, Proposal, StopScope, StopSwitch
from approvals.stops.selectors import describe_stop, stop_covering, stop_list_engaged
from approvals.workflows.followups import address_refusal, followup_refusal, webhook_target
from audit.services import Actor, EventData, audit_record_many

logger = logging.getLogger(__name__)


def _seconds(name: str) -> timedelta:
    return timedelta(seconds=float(settings.COUNTERSIGN[name]))


def _unknown_after() -> timedelta:
    """How long a started send may go unreported before its outcome counts as unknown: never less
    than ten times the longest a send may take."""
    longest = max(float(settings.COUNTERSIGN[name]) for name in ("HTTP_TIMEOUT_SECONDS", "EMAIL_TIMEOUT_SECONDS"))
    return max(_seconds("FOLLOWUP_UNKNOWN_AFTER_SECONDS"), timedelta(seconds=10 * longest))


class FollowUpError(Exception):
    """A follow-up cannot run, and trying again would not help: the reason is kept on the row and in the trail."""


def followups_create_for_change(*, proposal: Proposal, change_id: UUID) -> list[FollowUp]:
    """Put the proposal's follow-ups in the outbox, held for the configured window. Caller's transaction."""
    if not proposal.follow_ups:
        return []
    due_at = timezone.now() + _seconds("FOLLOWUP_HOLD_SECONDS")
    rows = [
        FollowUp(
            proposal=proposal,
            change_id=change_id,
            position=position,
            kind=str(item.get("kind", "")) if isinstance(item, dict) else "",
            params=item.get("params", {}) if isinstance(item, dict) else {},
            due_at=due_at,
        )
        for position, item in enumerate(proposal.follow_ups)
    ]
    return FollowUp.objects.bulk_create(rows)


def _event(row: FollowUp, action: str, actor: Actor, **fields: Any) -> EventData:
    proposal = row.proposal
    details = {"follow_up_id": row.pk, "index": row.position, "kind": row.kind, "attempts": row.attempts}
    if row.kind == FollowUpKind.WEBHOOK:
        details["url"] = str(row.params.get("url", ""))[:500]
    elif row.kind == FollowUpKind.EMAIL_CUSTOMER:
        details["template"] = str(row.params.get("template", ""))
    return EventData(
        action=action, actor=actor, change_id=row.change_id, details=details, **proposal.trail_fields(), **fields
    )


# Once a follow-up is sending, sent or of unknown outcome, the customer may already have it: an undo
# cannot take it back.
NOT_RETRACTABLE = (FollowUpStatus.SENDING, FollowUpStatus.SENT, FollowUpStatus.UNKNOWN)


@dataclass
class FollowUpCancellation:
    """What undoing some changes did to their follow-ups, by change."""

    cancelled: dict[UUID, list[FollowUp]] = field(default_factory=dict)
    not_retractable: dict[UUID, list[FollowUp]] = field(default_factory=dict)


def followups_cancel_for_changes(*, change_ids: Collection[UUID], actor: Actor, reason: str) -> FollowUpCancellation:
    """Cancel the follow-ups of these changes that are still held, and list those already sending or
    sent. In the caller's transaction; each cancellation is on the trail with `reason`."""
    result = FollowUpCancellation()
    if not change_ids:
        return result
    rows = list(
        FollowUp.objects.select_for_update(of=("self",))
        .select_related("proposal__workflow")
        .filter(change_id__in=list(change_ids))
        .order_by("pk")
    )
    held = [row for row in rows if row.status == FollowUpStatus.HELD]
    now = timezone.now()
    if held:
        FollowUp.objects.filter(pk__in=[row.pk for row in held]).update(
            status=FollowUpStatus.CANCELLED, finished_at=now
        )
    for row in held:
        row.status, row.finished_at = FollowUpStatus.CANCELLED, now
        result.cancelled.setdefault(row.change_id, []).append(row)
    for row in rows:
        if row.status in NOT_RETRACTABLE:
            result.not_retractable.setdefault(row.change_id, []).append(row)
    audit_record_many([_event(row, "followup.cancelled", actor, reason=reason) for row in held])
    return result


def _stops_first_to_last(switches: Iterable[StopSwitch]) -> list[StopSwitch]:
    """The switches in the order they say why a follow-up waits: global, then workflow, then batch."""
    order = {StopScope.GLOBAL: 0, StopScope.WORKFLOW: 1, StopScope.BATCH: 2}
    return sorted(switches, key=lambda switch: order.get(StopScope(switch.scope), 3))


def _covered_by(switch: StopSwitch) -> Q:
    if switch.scope == StopScope.GLOBAL:
        return Q(pk__isnull=False)
    if switch.scope == StopScope.WORKFLOW:
        return Q(proposal__workflow_id=switch.workflow_id)
    return Q(proposal__batch_id=switch.batch_id)


def _hold_stopped(due: QuerySet[FollowUp], switches: Iterable[StopSwitch]) -> Q | None:
    """Note on each due follow-up that an engaged stop covers why it waits (the first switch that
    covers it says so); returns what those switches cover, for the claim to leave alone."""
    covered: Q | None = None
    for switch in _stops_first_to_last(switches):
        reason = f"held by the stop switch: {describe_stop(switch)}"
        mine = due.filter(_covered_by(switch))
        if covered is not None:
            mine = mine.exclude(covered)
        mine.exclude(wait_reason=reason).update(wait_reason=reason)
        covered = _covered_by(switch) if covered is None else covered | _covered_by(switch)
    return covered


def _give_up_unanswered(now: datetime, actor: Actor) -> None:
    """Record as unknown the follow-ups whose sending began and was never reported back in time."""
    rows = list(
        FollowUp.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("proposal__workflow")
        .filter(status=FollowUpStatus.SENDING, started_at__isnull=False, lease_until__lt=now)
    )
    for row in rows:
        row.status, row.finished_at = FollowUpStatus.UNKNOWN, now
        row.last_error = (
            f"the run that began sending it at {row.started_at:%Y-%m-%d %H:%M:%S} UTC never reported back; "
            "it may or may not have arrived, so it is not sent again"
        )
    FollowUp.objects.bulk_update(rows, ["status", "finished_at", "last_error"])
    audit_record_many([_event(row, "followup.unknown", actor, reason=row.last_error) for row in rows])


@dataclass(frozen=True)
class FollowUpClaim:
    """The follow-ups one run took, under its own token."""

    token: UUID
    ids: list[int]


def followups_claim_due(*, worker: str, limit: int = 50) -> FollowUpClaim:
    """Take the due follow-ups that no stop switch holds for one run, until its claim ends. A claim
    that ended before its follow-up was started gives it back; a send never reported back is given up."""
    now = timezone.now()
    claim = FollowUpClaim(uuid4(), [])
    with transaction.atomic():
        FollowUp.objects.filter(status=FollowUpStatus.SENDING, started_at__isnull=True, lease_until__lt=now).update(
            status=FollowUpStatus.HELD, claim=None, lease_until=None
        )
        _give_up_unanswered(now, Actor.worker(worker))
        held = _hold_stopped(FollowUp.objects.filter(status=FollowUpStatus.HELD, due_at__lte=now), stop_list_engaged())
        due = FollowUp.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            status=FollowUpStatus.HELD, due_at__lte=now
        )
        if held is not None:
            due = due.exclude(held)
        claim.ids.extend(due.order_by("due_at", "pk").values_list("pk", flat=True)[:limit])
        FollowUp.objects.filter(pk__in=claim.ids).update(
            status=FollowUpStatus.SENDING,
            claim=claim.token,
            lease_until=now + _seconds("FOLLOWUP_CLAIM_SECONDS"),
            wait_reason="",
        )
    return claim


def _start(*, followup_id: int, claim: UUID) -> FollowUp | None:
    """Mark a claimed follow-up as being sent, unless its claim was lost or a stop switch now covers
    it (then it waits again, saying why). None when it is not to be sent now."""
    with transaction.atomic():
        row = (
            FollowUp.objects.select_for_update(of=("self",))
            .select_related("proposal__workflow", "proposal__service_account")
            .filter(pk=followup_id)
            .first()
        )
        if row is None or row.status != FollowUpStatus.SENDING or row.claim != claim or row.started_at is not None:
            return None
        switch = stop_covering(workflow_id=row.proposal.workflow_id, batch_id=row.proposal.batch_id)
        if switch is not None:
            row.status, row.claim, row.lease_until = FollowUpStatus.HELD, None, None
            row.wait_reason = f"held by the stop switch: {describe_stop(switch)}"
            row.save(update_fields=["status", "claim", "lease_until", "wait_reason"])
            return None
        now = timezone.now()
        row.attempts += 1
        row.started_at, row.lease_until = now, now + _unknown_after()
        row.save(update_fields=["attempts", "started_at", "lease_until"])
    return row


def _send_email(row: FollowUp) -> None:
    try:
        email = email_content(proposal=row.proposal, template=str(row.params.get("template")))
    except CannotRender as problem:
        raise FollowUpError(str(problem)) from None
    EmailMessage(
        subject=email.subject,
        body=email.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.recipient],
        headers={"X-Countersign-Change": str(row.change_id), "X-Countersign-Follow-Up": str(row.pk)},
    ).send()


def _checked_address(name: str, port: int, hosts: Collection[str]) -> str:
    """The first address `name` resolves to that the workflow's webhooks may reach."""
    refusals = []
    for address in resolve(host=name, port=port):
        refusal = address_refusal(address=address, allowed=hosts)
        if not refusal:
            return address
        refusals.append(refusal)
    raise FollowUpError(f"{name} was not called: {'; '.join(refusals) or 'it resolves to no address'}")


def _call_webhook(row: FollowUp) -> None:
    proposal = row.proposal
    url = row.params.get("url")
    target = webhook_target(url) if isinstance(url, str) else None
    if target is None:
        raise FollowUpError("params.url is not an http or https URL")
    address = _checked_address(*target, proposal.workflow.webhook_hosts or [])
    body = webhook_content(proposal=proposal, params=row.params, follow_up_id=row.pk, change_id=row.change_id)
    secret = proposal.service_account.callback_secret if proposal.service_account else ""
    # The follow-up's id lets a receiver drop a repeat of one it already has.
    headers = {"X-Countersign-Event": "follow_up", "Idempotency-Key": str(row.pk)}
    post_json(url=str(url), body=json_body(body), headers=headers, secret=secret, address=address)


HANDLERS = {FollowUpKind.EMAIL_CUSTOMER: _send_email, FollowUpKind.WEBHOOK: _call_webhook}


def _deliver(row: FollowUp) -> tuple[str, bool]:
    """Run the row's handler, after asking its workflow's file as it stands now. Returns the error
    ('' when it went out) and whether trying again could help."""
    handler = HANDLERS.get(FollowUpKind(row.kind)) if row.kind in FollowUpKind.values else None
    try:
        if handler is None:
            raise FollowUpError(f"no handler for follow-up kind '{row.kind}'")
        params = row.params if isinstance(row.params, dict) else {}
        refusal = followup_refusal(workflow=row.proposal.workflow, kind=row.kind, params=params)
        if refusal is not None:
            raise FollowUpError(refusal[1])
        handler(row)
    except Exception as failure:  # any failure of a handler is kept on the row, never lost
        error = f"{type(failure).__name__}: {failure}"[:2000]
        logger.warning("follow-up %s failed: %s", row.pk, error)
        return error, not isinstance(failure, FollowUpError)
    return "", False


def _finish(*, followup_id: int, claim: UUID, error: str, retry: bool, worker: str) -> FollowUp:
    """Record how the run that started the follow-up went (even if it was given up as unknown meanwhile)."""
    actor = Actor.worker(worker)
    with transaction.atomic():
        row = FollowUp.objects.select_for_update(of=("self",)).select_related("proposal__workflow").get(pk=followup_id)
        if row.claim != claim or row.status not in (FollowUpStatus.SENDING, FollowUpStatus.UNKNOWN):
            return row
        now = timezone.now()
        row.claim = row.started_at = row.lease_until = None
        if not error:
            row.status, row.finished_at, row.last_error = FollowUpStatus.SENT, now, ""
            audit_record_many([_event(row, "followup.sent", actor)])
        elif not retry or row.attempts >= int(settings.COUNTERSIGN["FOLLOWUP_MAX_ATTEMPTS"]):
            row.status, row.finished_at, row.last_error = FollowUpStatus.FAILED, now, error
            audit_record_many([_event(row, "followup.failed", actor, reason=error)])
        else:
            row.status, row.finished_at, row.last_error = FollowUpStatus.HELD, None, error
            retry_in = float(settings.COUNTERSIGN["FOLLOWUP_RETRY_SECONDS"]) * 2 ** (row.attempts - 1)
            row.due_at = now + timedelta(seconds=min(retry_in, 3600))
        row.save(update_fields=["status", "finished_at", "last_error", "claim", "started_at", "lease_until", "due_at"])
    return row


def followup_run(*, followup_id: int, claim: UUID, worker: str) -> FollowUp | None:
    """Send one claimed follow-up, once, and record how it went. None when it was not sent now."""
    row = _start(followup_id=followup_id, claim=claim)
    if row is None:
        return None
    error, retry = _deliver(row)
    return _finish(followup_id=followup_id, claim=claim, error=error, retry=retry, worker=worker)


def followups_run_due(*, worker: str, limit: int = 50) -> int:
    """Claim and send the follow-ups that are due. Returns how many were sent or tried."""
    claim = followups_claim_due(worker=worker, limit=limit)
    return sum(followup_run(followup_id=pk, claim=claim.token, worker=worker) is not None for pk in claim.ids)
