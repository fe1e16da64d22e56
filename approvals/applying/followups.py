"""Follow-ups: outbox rows made when a change is applied, held so an undo can cancel them, then run."""

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Q
from django.template import engines
from django.utils import timezone

from approvals.applying.delivery import json_body, post_json
from approvals.models import FollowUp, FollowUpKind, FollowUpStatus, Proposal
from audit.services import Actor, EventData, audit_record_many
from records.catalogue import RECORD_TYPES, Kind
from records.store import RecordRef, get_store

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_WEBHOOK_URL_LENGTH = 2000

# Subject and body of each email a proposal may ask for. The context holds `customer` (the
# customer's fields), `record` (the changed record's fields) and `changes` (what was applied).
EMAIL_TEMPLATES: dict[str, tuple[str, str]] = {
    "address-confirmed": (
        "Your shipping address has been updated",
        "Hello {{ customer.full_name }},\n\nWe have updated the shipping address on your account to:\n\n"
        "{{ customer.shipping_address }}\n\nIf you did not ask for this, please reply to this email.\n",
    ),
    "refund-update": (
        "An update on your refund",
        "Hello {{ customer.full_name }},\n\nThe refund for order {{ record.order_number }} is now: "
        "{{ record.refund_status }}.\n",
    ),
    "ticket-update": (
        "An update on your request: {{ record.subject }}",
        'Hello {{ customer.full_name }},\n\nYour request "{{ record.subject }}" is now {{ record.status }}.\n'
        "{% if record.resolution_note %}\n{{ record.resolution_note }}\n{% endif %}",
    ),
}


class FollowUpError(Exception):
    """A follow-up cannot run, and trying again would not help: the reason is kept on the row and in the trail."""


def webhook_host(url: str) -> str | None:
    """The `host` or `host:port` an http or https URL calls, lowercased; None when it is no such URL."""
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        return None
    if split.scheme not in {"http", "https"} or not split.hostname or split.username or split.password:
        return None
    return f"{split.hostname}:{port}" if port else split.hostname


def webhook_allowed(*, host: str, allowed: Collection[str]) -> bool:
    """Whether a workflow whose webhooks may go to `allowed` may call `host` (a bare name allows any port)."""
    return host in allowed or host.rsplit(":", 1)[0] in allowed


def followup_problems(*, kind: Any, params: Any) -> list[tuple[str, str]]:
    """What is wrong with a follow-up as a pipeline sent it, each naming its part (empty when it can run)."""
    if kind not in FollowUpKind.values:
        return [("kind", f"'{str(kind)[:40]}' is not a follow-up kind; use one of {', '.join(FollowUpKind.values)}")]
    if not isinstance(params, dict):
        return [("params", "must be an object")]
    if kind == FollowUpKind.EMAIL_CUSTOMER and params.get("template") not in EMAIL_TEMPLATES:
        return [("params.template", f"must be one of {', '.join(EMAIL_TEMPLATES)}")]
    if kind == FollowUpKind.WEBHOOK:
        url = params.get("url")
        if not isinstance(url, str) or len(url) > MAX_WEBHOOK_URL_LENGTH or webhook_host(url) is None:
            limit = MAX_WEBHOOK_URL_LENGTH
            return [("params.url", f"must be an http or https URL with a host, at most {limit} characters")]
    return []


def followups_create_for_change(*, proposal: Proposal, change_id: UUID) -> list[FollowUp]:
    """Put the proposal's follow-ups in the outbox, held for the configured window. Caller's transaction."""
    if not proposal.follow_ups:
        return []
    due_at = timezone.now() + timedelta(seconds=float(settings.COUNTERSIGN["FOLLOWUP_HOLD_SECONDS"]))
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
    details = {"follow_up_id": row.pk, "kind": row.kind, "attempts": row.attempts}
    if row.kind == FollowUpKind.WEBHOOK:
        details["url"] = str(row.params.get("url", ""))[:500]
    elif row.kind == FollowUpKind.EMAIL_CUSTOMER:
        details["template"] = str(row.params.get("template", ""))
    return EventData(
        action=action, actor=actor, change_id=row.change_id, details=details, **proposal.trail_fields(), **fields
    )


# Once a follow-up is sending or sent, the customer may already have it: an undo cannot take it back.
NOT_RETRACTABLE = (FollowUpStatus.SENDING, FollowUpStatus.SENT)


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


def followups_claim_due(*, limit: int = 50) -> list[int]:
    """Take due follow-ups (and ones whose sender died mid-way) for this worker; returns their ids."""
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            FollowUp.objects.select_for_update(skip_locked=True)
            .filter(
                Q(status=FollowUpStatus.HELD, due_at__lte=now) | Q(status=FollowUpStatus.SENDING, lease_until__lt=now)
            )
            .order_by("due_at", "pk")[:limit]
        )
        for row in rows:
            row.status = FollowUpStatus.SENDING
            row.attempts += 1
            row.lease_until = now + LEASE
            row.save(update_fields=["status", "attempts", "lease_until"])
    return [row.pk for row in rows]


def _customer_of(ref: RecordRef) -> RecordRef:
    if ref.record_type == "customer":
        return ref
    record_type = RECORD_TYPES[ref.record_type]
    reference = next(s.name for s in record_type.fields if s.kind == Kind.REF and s.ref_type == "customer")
    return RecordRef("customer", get_store(ref.record_type).fetch(ref, [reference]).values[reference])


def _render(text: str, context: dict[str, Any]) -> str:
    """Plain-text mail: no HTML escaping."""
    return engines["django"].from_string("{% autoescape off %}" + text + "{% endautoescape %}").render(context)


def _send_email(row: FollowUp) -> None:
    proposal = row.proposal
    template_name = row.params.get("template")
    if template_name not in EMAIL_TEMPLATES:
        raise FollowUpError(f"unknown email template '{template_name}'; known: {', '.join(EMAIL_TEMPLATES)}")
    ref = RecordRef(proposal.record_type, proposal.record_id)
    record = get_store(ref.record_type).fetch(ref)
    customer = record if ref.record_type == "customer" else get_store("customer").fetch(_customer_of(ref))
    address = customer.values.get("email")
    if not address:
        raise FollowUpError(f"{customer.ref} has no email address")
    subject, body = EMAIL_TEMPLATES[template_name]
    context = {"customer": customer.values, "record": record.values, "changes": proposal.changes}
    EmailMessage(
        subject=" ".join(_render(subject, context).split()),
        body=_render(body, context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[address],
        headers={"X-Countersign-Change": str(row.change_id)},
    ).send()


def _call_webhook(row: FollowUp) -> None:
    proposal = row.proposal
    url = row.params.get("url")
    host = webhook_host(url) if isinstance(url, str) else None
    if host is None:
        raise FollowUpError("params.url is not an http or https URL")
    if not webhook_allowed(host=host, allowed=proposal.workflow.webhook_hosts):
        slug = proposal.workflow.slug
        raise FollowUpError(f"workflow {slug} may not call {host}: it is not one of its webhook hosts")
    body = json_body(
        {
            "event": "follow_up",
            "follow_up_id": row.pk,
            "proposal_id": proposal.pk,
            "change_id": str(row.change_id),
            "workflow": proposal.workflow.slug,
            "record_type": proposal.record_type,
            "record_id": proposal.record_id,
            "payload": row.params.get("payload", {}),
        }
    )
    secret = proposal.service_account.callback_secret if proposal.service_account else ""
    post_json(url=url, body=body, headers={"X-Countersign-Event": "follow_up"}, secret=secret)


HANDLERS = {FollowUpKind.EMAIL_CUSTOMER: _send_email, FollowUpKind.WEBHOOK: _call_webhook}


def followup_run(*, followup_id: int, worker: str) -> FollowUp:
    """Run one claimed follow-up through its handler and record how it went."""
    row = FollowUp.objects.select_related("proposal__workflow", "proposal__service_account").get(pk=followup_id)
    if row.status != FollowUpStatus.SENDING:
        return row
    handler = HANDLERS.get(FollowUpKind(row.kind)) if row.kind in FollowUpKind.values else None
    error = ""
    final = False
    try:
        if handler is None:
            raise FollowUpError(f"no handler for follow-up kind '{row.kind}'")
        handler(row)
    except Exception as failure:  # any failure of a handler is kept on the row, never lost
        error = f"{type(failure).__name__}: {failure}"[:2000]
        final = isinstance(failure, FollowUpError)
        logger.warning("follow-up %s failed: %s", row.pk, error)
    actor = Actor.worker(worker)
    with transaction.atomic():
        row = FollowUp.objects.select_for_update(of=("self",)).select_related("proposal__workflow").get(pk=followup_id)
        if row.status != FollowUpStatus.SENDING:
            return row
        now = timezone.now()
        row.lease_until = None
        if not error:
            row.status, row.finished_at, row.last_error = FollowUpStatus.SENT, now, ""
            audit_record_many([_event(row, "followup.sent", actor)])
        elif final or row.attempts >= int(settings.COUNTERSIGN["FOLLOWUP_MAX_ATTEMPTS"]):
            row.status, row.finished_at, row.last_error = FollowUpStatus.FAILED, now, error
            audit_record_many([_event(row, "followup.failed", actor, reason=error)])
        else:
            row.status, row.last_error = FollowUpStatus.HELD, error
            retry = float(settings.COUNTERSIGN["FOLLOWUP_RETRY_SECONDS"]) * 2 ** (row.attempts - 1)
            row.due_at = now + timedelta(seconds=min(retry, 3600))
        row.save(update_fields=["status", "finished_at", "last_error", "lease_until", "due_at"])
    return row


def followups_run_due(*, worker: str, limit: int = 50) -> int:
    """Claim and run the follow-ups that are due. Returns how many were run."""
    claimed = followups_claim_due(limit=limit)
    for followup_id in claimed:
        followup_run(followup_id=followup_id, worker=worker)
    return len(claimed)
