"""Outcome callbacks: a pipeline learns each decision and outcome of its proposals without polling."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals import jobs
from approvals.applying.delivery import json_body, post_json
from approvals.applying.outcome import proposal_outcome
from approvals.models import Proposal
from audit.services import Actor, audit_record

CALLBACK_EVENTS = ("approved", "rejected", "applied", "conflict", "failed", "expired", "cancelled", "reverted")


def callback_queue_for(*, proposal: Proposal, event: str) -> None:
    """Tell the proposal's pipeline about `event`, from a worker, once the current transaction commits.

    Nothing is queued when its service account has no callback URL. `proposal` comes loaded with
    its service account, so this costs no query.
    """
    if event not in CALLBACK_EVENTS:
        raise ValueError(f"'{event}' is not a callback event; use one of {', '.join(CALLBACK_EVENTS)}")
    account = proposal.service_account
    if account is not None and account.callback_url:
        jobs.callback_queue(proposal_id=proposal.pk, event=event)


def callback_payload(*, proposal: Proposal, event: str, delivery_id: str) -> dict[str, Any]:
    return {
        "event": event,
        "delivery_id": delivery_id,
        "sent_at": timezone.now(),
        "proposal": proposal_outcome(proposal=proposal)
        | {"batch_id": proposal.batch_id, "run_id": proposal.run_id, "error": proposal.last_error or None},
    }


def callback_deliver(*, proposal_id: int, event: str, delivery_id: str) -> int | None:
    """POST one signed callback. Returns the answer's status, None when there is no callback URL.

    Raises DeliveryFailed when the pipeline could not be reached or did not answer 2xx.
    """
    proposal = Proposal.objects.select_related("service_account", "decided_by").filter(pk=proposal_id).first()
    account = proposal.service_account if proposal else None
    if proposal is None or account is None or not account.callback_url:
        return None
    body = json_body(callback_payload(proposal=proposal, event=event, delivery_id=delivery_id))
    return post_json(
        url=account.callback_url,
        body=body,
        headers={"X-Countersign-Event": event, "X-Countersign-Delivery": delivery_id},
        secret=account.callback_secret,
    )


def callback_give_up(*, proposal_id: int, event: str, error: str, attempts: int) -> None:
    """Record on the trail that a callback could not be delivered after every retry."""
    proposal = Proposal.objects.select_related("workflow", "service_account").filter(pk=proposal_id).first()
    if proposal is None:
        return
    with transaction.atomic():
        audit_record(
            action="callback.failed",
            actor=Actor.system("callbacks"),
            reason=error,
            details={
                "event": event,
                "attempts": attempts,
                "url": proposal.service_account.callback_url if proposal.service_account else "",
            },
            **proposal.trail_fields(),
        )
