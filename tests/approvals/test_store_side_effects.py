"""What a system of record does on a write of its own (BottleCRM emails a case's contact when its
status changes) is shown on the review screen, and such a write is never approved without review."""

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from approvals.applying.services import Outcome, proposals_apply
from approvals.models import FieldPolicy, Proposal, ProposalStatus, Workflow
from approvals.review.services import proposal_approve
from approvals.workflows.selectors import write_policy
from records.models import Change
from records.store import RecordRef, store_bind, store_side_effects
from records.store.bottlecrm import BottleCrmStore
from tests.helpers.bottlecrm import TICKET_FIELDS, BottleCrm
from tests.helpers.factories import FieldPolicyFactory, UserFactory
from tests.helpers.pipeline import make_pipeline, proposal_body

EMAILS = "emails the case's contact"


@pytest.fixture
def unbind_ticket() -> Iterator[None]:
    """Whatever a test pins `ticket` to, it is back on its binding (the built-in store here) afterwards."""
    yield
    store_bind(record_type="ticket", store=None)


def _offline_ticket_store(**side_effects: str) -> BottleCrmStore:
    """A ticket binding to a BottleCRM that need not be running: the loader reads only its declaration."""
    return BottleCrmStore(
        url="http://127.0.0.1:9",
        token="bcrm_pat_x",
        record_type="ticket",
        fields=TICKET_FIELDS,
        side_effects=side_effects,
    )


def _load(tmp_path: Path, fields: dict[str, dict[str, str]]) -> None:
    UserFactory(username="owner")
    workflow = {
        "slug": "ticket-triage",
        "name": "Ticket triage",
        "owner": "owner",
        "lane": "write",
        "stage": "draft",
        "approvers": "support-leads",
        "actions": ["update"],
        "fields": fields,
    }
    path = tmp_path / "workflows.yaml"
    path.write_text(yaml.safe_dump({"workflows": [workflow]}))
    call_command("load_workflows", str(path))


@pytest.mark.django_db
def test_the_selector_says_what_the_bound_store_declares(unbind_ticket: None) -> None:
    store_bind(record_type="ticket", store=_offline_ticket_store(status=EMAILS))

    [effect] = store_side_effects(record_type="ticket").values()

    assert effect.sentence == "Writing status in BottleCRM emails the case's contact"
    assert store_side_effects(record_type="customer") == {}


@pytest.mark.django_db
def test_the_loader_refuses_write_without_review_on_a_field_with_a_side_effect(
    unbind_ticket: None, tmp_path: Path
) -> None:
    store_bind(record_type="ticket", store=_offline_ticket_store(priority="emails the case's contact"))

    with pytest.raises(
        CommandError,
        match="fields.ticket.priority: write is refused on priority: Writing priority in BottleCRM emails "
        "the case's contact; use suggest so a person approves",
    ):
        _load(tmp_path, {"ticket": {"priority": "write", "subject": "read"}})
    assert not Workflow.objects.exists()

    _load(tmp_path, {"ticket": {"priority": "suggest", "subject": "read"}})
    assert FieldPolicy.objects.get(field="priority").access == "suggest"


@pytest.fixture
def crm_tickets(bottlecrm: BottleCrm, unbind_ticket: None) -> tuple[BottleCrm, BottleCrmStore]:
    """Tickets held in BottleCRM, whose binding says that writing status or priority emails the contact."""
    store = bottlecrm.bind("ticket", side_effects={"status": EMAILS, "priority": EMAILS})
    return bottlecrm, store


def _ticket_pipeline(workflow: Workflow, **access: str):  # type: ignore[no-untyped-def]
    for field, level in access.items():
        FieldPolicyFactory(workflow=workflow, record_type="ticket", field=field, access=level)
    return make_pipeline(workflow)


def _ticket_body(ref: RecordRef, changes: dict[str, str], base: dict[str, str]) -> dict[str, object]:
    return proposal_body(
        record_type="ticket", record_id=ref.record_id, changes=changes, base=base, follow_ups=..., reason="Triage"
    )


@pytest.mark.django_db
def test_intake_keeps_for_a_person_a_write_the_binding_later_gave_a_side_effect(crm_tickets, workflow) -> None:  # type: ignore[no-untyped-def]
    crm, store = crm_tickets
    ref = crm.ticket(store, priority="normal")
    # The workflow's file let priority be written without review before the binding declared the email.
    pipeline = _ticket_pipeline(workflow, subject="read", priority="write")

    answer = pipeline.post("/api/v1/proposals", _ticket_body(ref, {"priority": "high"}, {"priority": "normal"}))

    assert answer.status_code == 201, answer.content
    proposal = Proposal.objects.get(pk=answer.json()["id"])
    assert proposal.status == ProposalStatus.PENDING
    assert crm.raw(store, ref)["priority"] == "Normal"
    # And a proposal approved without review before the declaration is no longer written without one.
    refusal = write_policy(workflow=workflow).refusal(proposal=proposal, reviewed=False)
    assert (
        refusal == "ticket.priority needs a person's approval: Writing priority in BottleCRM emails the case's contact"
    )
    assert write_policy(workflow=workflow).refusal(proposal=proposal, reviewed=True) == ""


@pytest.mark.django_db
def test_the_review_screen_says_what_bottlecrm_does_beside_the_change(crm_tickets, workflow, lead) -> None:  # type: ignore[no-untyped-def]
    crm, store = crm_tickets
    ref = crm.ticket(store, status="open")
    pipeline = _ticket_pipeline(workflow, subject="read", status="suggest", resolution_note="suggest")
    body = _ticket_body(ref, {"status": "closed", "resolution_note": "Refund sent"}, {"status": "open"})
    answer = pipeline.post("/api/v1/proposals", body)
    assert answer.status_code == 201, answer.content

    client = Client()
    client.force_login(lead)
    page = client.get(answer.json()["review_url"]).content.decode()

    assert "Writing status in BottleCRM emails the case&#x27;s contact." in page
    assert 'data-side-effect="status"' in page
    assert 'data-side-effect="resolution_note"' not in page


@pytest.mark.django_db
def test_the_undo_page_says_what_bottlecrm_does_when_the_undo_writes_status_back(crm_tickets, workflow, lead) -> None:  # type: ignore[no-untyped-def]
    crm, store = crm_tickets
    ref = crm.ticket(store, status="open")
    pipeline = _ticket_pipeline(workflow, subject="read", status="suggest")
    answer = pipeline.post("/api/v1/proposals", _ticket_body(ref, {"status": "closed"}, {"status": "open"}))
    assert answer.status_code == 201, answer.content
    proposal = Proposal.objects.get(pk=answer.json()["id"])
    proposal_approve(proposal=proposal, reviewer=lead)
    [applied] = proposals_apply(proposal_ids=[proposal.pk], worker="worker@test/1")
    assert applied.outcome == Outcome.APPLIED, applied.detail
    assert crm.raw(store, ref)["status"] == "Closed"
    ops = UserFactory(username="ops")
    ops.groups.add(Group.objects.get_or_create(name="ops-managers")[0])

    client = Client()
    client.force_login(ops)
    page = client.get(f"/changes/{Change.objects.get(proposal_id=proposal.pk).id}/undo/").content.decode()

    assert (
        "Writing status in BottleCRM emails the case&#x27;s contact.</strong> Undoing this change sets it off too."
        in page
    )
