"""Deterministic demo proposals, submitted through the same intake services the pipeline API uses:
pending proposals of every action across the demo workflows, one bulk batch among them, and a few
shadowed ones from the shadow-stage workflow.

`seed_held_work` then leaves something for the on-call side to try: a batch the lead approved that
its pipeline halted (a batch stop switch), an approved change that an agent's edit by hand will
turn into a conflict when the worker comes to it, and a prompt that carried more than the workflow
may read."""

from collections import defaultdict
from typing import Any

from django.contrib.auth.models import User

from approvals.demo.records import demo_records
from approvals.intake.artifacts import artifact_attach
from approvals.intake.services import ProposalData, batch_open, proposal_submit, proposal_submit_many
from approvals.models import Proposal, ServiceAccount
from approvals.review.services import proposal_approve
from approvals.stops.services import stop_engage_for_own_batch
from records.services.changes import ChangeOrigin, change_update
from records.store import RecordState

REQUESTER = "agent"
BULK_SIZE = 30
HALTED_APPROVED = 12
HALTED_PENDING = 3
HALTED_BATCH = "Weekend address sweep"
HALT_REASON = "The address parser timed out twice on this run; holding its writes until someone checks a sample"
STREETS = ["Harbour Road", "Castle Street", "Rose Street", "Canal Walk", "Station Road", "Park Avenue"]
TOWNS = ["Leith", "Edinburgh", "Glasgow", "York", "Bristol"]


def _update(
    record_type: str, record_id: str, changes: dict[str, Any], base: dict[str, Any], **extra: Any
) -> ProposalData:
    return ProposalData(
        record_type=record_type,
        record_id=record_id,
        action="update",
        changes=changes,
        base=base,
        requested_by=REQUESTER,
        **extra,
    )


def _address_update(customer: RecordState, n: int, run_id: str) -> ProposalData:
    address = f"{12 + n} {STREETS[n % len(STREETS)]}, {TOWNS[n % len(TOWNS)]}"
    return _update(
        "customer",
        customer.ref.record_id,
        {"shipping_address": address},
        {"shipping_address": customer.values["shipping_address"]},
        base_version=customer.version,
        reason=f"Customer wrote in ticket T-{801 + n}: 'please send everything to {address} from now on'",
        confidence=round(0.78 + (n % 20) / 100, 2),
        model_name="gpt-x",
        model_version="2026-10-01",
        prompt_version="address-update@7",
        run_id=run_id,
        follow_ups=[{"kind": "email_customer", "params": {"template": "address-confirmed"}}],
    )


def merge_pairs(customers: list[RecordState]) -> list[tuple[RecordState, RecordState]]:
    """The three pairs of profiles sharing a name that duplicate-merge proposes to merge today."""
    by_name: dict[str, list[RecordState]] = defaultdict(list)
    for customer in customers:
        by_name[customer.values["full_name"]].append(customer)
    return [(group[0], group[1]) for _, group in sorted(by_name.items()) if len(group) > 1][:3]


def closed_profiles(customers: list[RecordState]) -> list[RecordState]:
    """The three closed accounts duplicate-merge proposes to archive or delete today."""
    return [customer for customer in customers if customer.values["account_status"] == "closed"][:3]


def seed_proposals(*, accounts: dict[str, ServiceAccount]) -> dict[str, int]:
    """Submit the demo proposals. Returns how many proposals each workflow got."""
    made: dict[str, int] = defaultdict(int)
    customers = demo_records("customer")

    address = accounts["address-updates"]
    for n, customer in enumerate(customers[:6]):
        proposal_submit(account=address, data=_address_update(customer, n, "run-2026-11-27-0042"))
        made[address.workflow.slug] += 1
    for n, customer in enumerate(customers[6:8]):
        phone = f"+44 7700 90{n:04d}"
        proposal_submit(
            account=address,
            data=_update(
                "customer",
                customer.ref.record_id,
                {"phone": phone},
                {"phone": customer.values["phone"]},
                reason=f"Signature of the customer's last email gives the number {phone}",
                confidence=0.88,
                model_name="gpt-x",
                model_version="2026-10-01",
                prompt_version="address-update@7",
                run_id="run-2026-11-27-0042",
            ),
        )
        made[address.workflow.slug] += 1
    batch = batch_open(
        account=address,
        name="Nightly address sweep from support tickets",
        run_id="sweep-2026-11-27",
        expected_size=BULK_SIZE,
        requested_by=REQUESTER,
    )
    sweep = [_address_update(c, n, "sweep-2026-11-27") for n, c in enumerate(customers[100 : 100 + BULK_SIZE])]
    made[address.workflow.slug] += len(proposal_submit_many(account=address, items=sweep, batch=batch))

    refunds = accounts["refund-notes"]
    delivered = [
        order
        for order in demo_records("order")
        if order.values["refund_status"] == "none" and order.values["status"] == "delivered"
    ]
    for n, order in enumerate(delivered[:3]):
        proposal_submit(
            account=refunds,
            data=_update(
                "order",
                order.ref.record_id,
                {"refund_status": "requested"},
                {"refund_status": order.values["refund_status"], "amount": order.values["amount"]},
                reason=(
                    f"The email of 26 Nov asks for a refund of order {order.values['order_number']}: "
                    "item arrived damaged"
                ),
                confidence=0.81 + n / 100,
                model_name="gpt-x-mini",
                model_version="2026-09-15",
                prompt_version="refund-notes@3",
                run_id="refunds-2026-11-27",
            ),
        )
        made[refunds.workflow.slug] += 1
    for customer in customers[20:22]:
        proposal_submit(
            account=refunds,
            data=_update(
                "customer",
                customer.ref.record_id,
                {"support_notes": "Refund requested by email on 26 Nov; waiting for photos of the damage."},
                {},
                reason="Summarises the customer's refund emails for the next agent",
                confidence=0.9,
                model_name="gpt-x-mini",
                model_version="2026-09-15",
                prompt_version="refund-notes@3",
                run_id="refunds-2026-11-27",
            ),
        )
        made[refunds.workflow.slug] += 1

    merges = accounts["duplicate-merge"]
    for survivor, duplicate in merge_pairs(customers):
        proposal_submit(
            account=merges,
            data=ProposalData(
                record_type="customer",
                record_id=duplicate.ref.record_id,
                action="merge",
                merge_into=survivor.ref.record_id,
                base={"full_name": duplicate.values["full_name"], "email": duplicate.values["email"]},
                reason=f"Same name as {survivor.ref.record_id}; the two profiles share orders placed from one address",
                confidence=0.74,
                model_name="dedupe-x",
                model_version="2026-08-01",
                prompt_version="dedupe@2",
                run_id="dedupe-2026-11-27",
                requested_by=REQUESTER,
            ),
        )
        made[merges.workflow.slug] += 1
    for customer, action in zip(closed_profiles(customers), ("archive", "archive", "delete"), strict=False):
        proposal_submit(
            account=merges,
            data=ProposalData(
                record_type="customer",
                record_id=customer.ref.record_id,
                action=action,
                base={"full_name": customer.values["full_name"]},
                reason="Account closed more than two years ago, with no orders or tickets since"
                if action == "archive"
                else "A test profile created by mistake; it holds no orders",
                confidence=0.83,
                model_name="dedupe-x",
                model_version="2026-08-01",
                prompt_version="dedupe@2",
                run_id="dedupe-2026-11-27",
                requested_by=REQUESTER,
            ),
        )
        made[merges.workflow.slug] += 1

    triage = accounts["ticket-triage"]
    open_tickets = [ticket for ticket in demo_records("ticket") if ticket.values["status"] == "open"]
    for ticket in open_tickets[:4]:
        proposal_submit(
            account=triage,
            data=_update(
                "ticket",
                ticket.ref.record_id,
                {"priority": "high"},
                {"priority": ticket.values["priority"], "subject": ticket.values["subject"]},
                reason=f"'{ticket.values['subject']}' from a customer with an order in transit",
                confidence=0.67,
                model_name="triage-x",
                model_version="2026-11-01",
                prompt_version="triage@1",
                run_id="triage-shadow-2026-11-27",
            ),
        )
        made[triage.workflow.slug] += 1
    return dict(made)


def seed_held_work(*, accounts: dict[str, ServiceAccount]) -> dict[str, int]:
    """The blocks an on-call person meets: a halted batch of approved changes (and a few still
    pending in it), one approved change whose record an agent edits by hand before the worker
    comes to it, and a flagged prompt. Returns how many proposals it added."""
    address = accounts["address-updates"]
    lead = User.objects.get(username="lead")
    customers = demo_records("customer")

    batch = batch_open(
        account=address,
        name=HALTED_BATCH,
        run_id="sweep-2026-11-28",
        expected_size=HALTED_APPROVED + HALTED_PENDING,
        requested_by=REQUESTER,
    )
    sweep = [
        _address_update(customer, 40 + n, "sweep-2026-11-28")
        for n, customer in enumerate(customers[130 : 130 + HALTED_APPROVED + HALTED_PENDING])
    ]
    submitted = [p for p in proposal_submit_many(account=address, items=sweep, batch=batch) if isinstance(p, Proposal)]
    for proposal in submitted[:HALTED_APPROVED]:
        proposal_approve(proposal=proposal, reviewer=lead, note="Spot-checked against the tickets")
    stop_engage_for_own_batch(account=address, batch=batch, reason=HALT_REASON)

    customer = customers[160]
    stale = proposal_submit(account=address, data=_address_update(customer, 60, "run-2026-11-27-0042"))
    proposal_approve(proposal=stale, reviewer=lead)
    change_update(
        ref=customer.ref,
        values={"shipping_address": "Flat 2, 7 Shore Road, Leith"},
        origin=ChangeOrigin(applied_by="support desk", reason="Customer phoned with a corrected address"),
        expected_version=customer.version,
    )

    flagged = next(
        (p, c)
        for p, c in _pending_address_updates(address, customers[:6])
        if c.values["internal_notes"] or c.values["support_notes"]
    )
    proposal, noted = flagged
    notes = " ".join(note for note in (noted.values["support_notes"], noted.values["internal_notes"]) if note)
    artifact_attach(
        account=address,
        kind="prompt",
        bucket="live",
        name=f"address-{noted.ref.record_id}.prompt.txt",
        content=(
            f"Ticket from {noted.values['full_name']} <{noted.values['email']}>: "
            "'please send everything to my new address'.\n"
            f"Account notes: {notes}\nExtract the new shipping address."
        ),
        proposal_id=proposal.pk,
    )
    return {address.workflow.slug: len(submitted) + 1}


def _pending_address_updates(
    account: ServiceAccount, customers: list[RecordState]
) -> list[tuple[Proposal, RecordState]]:
    by_id = {customer.ref.record_id: customer for customer in customers}
    proposals = Proposal.objects.filter(
        workflow=account.workflow, status="pending", record_id__in=list(by_id), batch__isnull=True
    ).order_by("pk")
    return [(proposal, by_id[proposal.record_id]) for proposal in proposals]
