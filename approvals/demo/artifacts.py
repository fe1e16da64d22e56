"""Demo artifacts: prompts, outputs, a cache entry and an error log kept under the demo's retention rules.

refund-notes keeps prompts and outputs for two minutes, so a new user sees them listed with their
expiry, then sees the purge remove them and leave tombstones in the trail.
"""

import hashlib

from django.utils import timezone

from approvals.demo.records import demo_records
from approvals.models import Proposal, RetentionRule
from audit.models import Artifact
from audit.services import Actor, EventData, audit_record_many
from records.store import RecordState


def _refund_notes(order: RecordState, customer: RecordState) -> list[tuple[str, str, str]]:
    record_id, values = order.ref.record_id, order.values
    return [
        (
            "prompt",
            f"refund-{record_id}.prompt.txt",
            f"Order {values['order_number']} ({record_id}), amount {values['amount']}, status {values['status']}.\n"
            f"Customer {customer.values['full_name']} wrote: 'The parcel came back to you last week, "
            "please refund me.'\nDecide the refund status and write a short support note.",
        ),
        (
            "output",
            f"refund-{record_id}.output.json",
            '{"refund_status": "requested", "support_notes": "Parcel returned; refund requested.", "confidence": 0.88}',
        ),
    ]


def _merge(survivor: RecordState, duplicate: RecordState) -> list[tuple[str, str, str]]:
    kept, folded = survivor.ref.record_id, duplicate.ref.record_id
    return [
        (
            "prompt",
            f"merge-{folded}.prompt.txt",
            f"Are {kept} ({survivor.values['full_name']}) and {folded} ({duplicate.values['full_name']}) "
            "the same person? Compare name, email, phone and address.",
        ),
        (
            "output",
            f"merge-{folded}.output.json",
            f'{{"same_person": false, "survivor": "{kept}", "confidence": 0.41}}',
        ),
    ]


def store_demo_artifacts(*, actor: Actor) -> int:
    """Store a few artifacts per workflow that keeps any, each expiring by its rule. Returns how many."""
    rules = {(r.workflow.slug, r.kind, r.bucket): r for r in RetentionRule.objects.select_related("workflow")}
    customers = {customer.ref.record_id: customer for customer in demo_records("customer")}
    planned: list[tuple[str, str, str, str, str, int | None]] = []
    # Each refund note belongs to the refund proposal for its order, so its trace shows the artifact,
    # and, once the two minutes are up, its tombstone.
    refunds = dict(
        Proposal.objects.filter(workflow__slug="refund-notes", record_type="order").values_list("record_id", "pk")
    )
    orders = demo_records("order")
    for order in [o for o in orders if o.ref.record_id in refunds] if refunds else orders[:3]:
        customer = customers[order.values["customer"]]
        planned += [
            ("refund-notes", kind, "live", name, text, refunds.get(order.ref.record_id))
            for kind, name, text in _refund_notes(order, customer)
        ]
    first = list(customers.values())[:6]
    for survivor, duplicate in zip(first[0::2], first[1::2], strict=True):
        planned += [
            ("duplicate-merge", kind, "live", name, text, None) for kind, name, text in _merge(survivor, duplicate)
        ]
    tickets = demo_records("ticket")
    if tickets:
        ticket, subject = tickets[0].ref.record_id, tickets[0].values["subject"]
        planned += [
            ("address-updates", "prompt", "live", f"address-{ticket}.prompt.txt",
             f"Ticket {ticket}: '{subject}'. Does the customer ask for a new shipping address?", None),
            ("address-updates", "error_log", "live", "worker.log",
             f"2026-11-27T09:14:03Z model timeout after 30s on {ticket}; retried once, succeeded", None),
            ("reply-drafts", "cache", "live", f"reply-{ticket}.cache",
             f"Draft reply for {ticket}: 'Thanks for getting in touch, we are looking into it.'", None),
        ]  # fmt: skip
    now = timezone.now()
    artifacts: list[Artifact] = []
    for slug, kind, bucket, name, text, proposal_id in planned:
        rule = rules[(slug, kind, bucket)]
        raw = text.encode()
        artifacts.append(
            Artifact(
                workflow_id=rule.workflow_id,
                workflow_slug=slug,
                proposal_id=proposal_id,
                rule_id=rule.pk,
                kind=kind,
                bucket=bucket,
                name=name,
                content=text,
                sha256=hashlib.sha256(raw).hexdigest(),
                size=len(raw),
                created_at=now,
                expires_at=now + rule.window,
            )
        )
    Artifact.objects.bulk_create(artifacts)
    audit_record_many(
        EventData(
            action="artifact.stored",
            actor=actor,
            workflow_slug=artifact.workflow_slug,
            proposal_id=artifact.proposal_id,
            details={
                "artifact_id": str(artifact.pk),
                "kind": artifact.kind,
                "bucket": artifact.bucket,
                "name": artifact.name,
                "sha256": artifact.sha256,
                "size": artifact.size,
                "rule_id": artifact.rule_id,
                "rule": f"{artifact.workflow_slug} {artifact.kind}/{artifact.bucket}",
                "expires_at": artifact.expires_at,
            },
        )
        for artifact in artifacts
    )
    return len(artifacts)
