"""The review screen of a decided or applied proposal says what happened to it, and raises no alarm
about the record having changed since the AI read it when what changed it was the proposal's own write."""

from html import unescape

from django.urls import reverse

from approvals.applying.services import proposals_apply
from approvals.models import ProposalStatus, StopScope
from approvals.review.services import proposal_approve, proposal_reject
from approvals.stops.services import stop_engage
from approvals.undo.services import undo_change
from audit.services import Actor
from records.models import Change, Customer
from records.services.changes import ChangeOrigin, change_update
from records.store import RecordRef
from tests.helpers.factories import BatchFactory, CustomerFactory, GroupFactory, ProposalFactory, UserFactory

ALARM = "The record changed after the AI read it."


def screen(client, user, proposal) -> str:  # type: ignore[no-untyped-def]
    client.force_login(user)
    response = client.get(reverse("review-detail", args=[proposal.pk]))
    assert response.status_code == 200
    return " ".join(unescape(response.content.decode()).split())


def approved_and_written(proposal, lead) -> Change:  # type: ignore[no-untyped-def]
    proposal_approve(proposal=proposal, reviewer=lead, note="Matches ticket T-881")
    proposals_apply(proposal_ids=[proposal.pk], worker="worker/1")
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.APPLIED
    return Change.objects.get(proposal_id=proposal.pk)


def test_an_applied_update_shows_who_approved_it_the_change_it_made_and_no_alarm_about_its_own_write(
    client, workflow, lead
):
    email = {"kind": "email_customer", "params": {"template": "address-confirmed"}}
    proposal = ProposalFactory(workflow=workflow, follow_ups=[email])
    change = approved_and_written(proposal, lead)
    html = screen(client, lead, proposal)
    assert ALARM not in html
    assert "Applied</strong>" in html
    assert "<h2>Follow-ups of this change</h2>" in html and "Once applied, this also sends" not in html
    assert "<strong>Email the customer</strong> · template <code>address-confirmed</code> · held (an undo" in html
    assert "Approved by Dana Lee" in html and "“Matches ticket T-881”" in html
    short = str(change.id)[:8]
    assert f'Written as change <a href="{reverse("trace-change", args=[change.id])}"><code>{short}</code></a>' in html
    assert f'<a href="{reverse("trace-proposal", args=[proposal.pk])}">Its trace</a>' in html
    assert 'aria-label="What it wrote"' in html
    assert '<td class="before"><div class="value">4 Old Mill Lane, Leith</div></td>' in html
    assert '<td class="proposed"><div class="value">12 Harbour Road, Leith</div></td>' in html
    assert '<td class="now"><div class="value">12 Harbour Road, Leith</div></td>' in html
    assert "changed since" not in html
    assert ">Approve</button>" not in html and ">Reject</button>" not in html


def test_a_record_changed_again_after_the_write_says_so_without_the_alarm(client, workflow, lead):
    proposal = ProposalFactory(workflow=workflow)
    approved_and_written(proposal, lead)
    change_update(
        ref=RecordRef("customer", proposal.record_id),
        values={"shipping_address": "9 Quay Street, Leith"},
        origin=ChangeOrigin(applied_by="dana"),
    )
    html = screen(client, lead, proposal)
    assert ALARM not in html
    assert "Shipping address changed again since this write: the record now holds “9 Quay Street, Leith”" in html
    assert (
        '<td class="now"><div class="value">9 Quay Street, Leith</div> <span class="badge warn">changed since' in html
    )


def test_an_undone_proposal_names_the_change_that_undid_it(client, workflow, lead):
    ops = UserFactory(username="ops")
    ops.groups.add(GroupFactory(name="ops-managers"))  # ops managers undo any workflow's changes
    proposal = ProposalFactory(workflow=workflow)
    change = approved_and_written(proposal, lead)
    undone = undo_change(change=change, actor=Actor.user(ops), user=ops, reason="wrong customer").revert
    html = screen(client, lead, proposal)
    assert "Reverted</strong>" in html and ALARM not in html
    assert f'Undone by change <a href="{reverse("trace-change", args=[undone.id])}"><code>{str(undone.id)[:8]}' in html
    assert "changed again since this write" not in html


def test_a_rejected_proposal_says_who_rejected_it_and_raises_no_alarm(client, workflow, lead):
    proposal = ProposalFactory(workflow=workflow)
    proposal_reject(proposal=proposal, reviewer=lead, reason="The ticket is about another customer")
    Customer.objects.filter(record_id=proposal.record_id).update(shipping_address="9 Quay Street, Leith")
    html = screen(client, lead, proposal)
    assert "Rejected by Dana Lee" in html and "“The ticket is about another customer”" in html
    assert ALARM not in html and "Approved by" not in html
    assert "Written as change" not in html


def test_an_approved_proposal_held_by_a_stop_says_what_holds_it(client, workflow, lead):
    batch = BatchFactory(workflow=workflow)
    proposal = ProposalFactory(workflow=workflow, batch=batch)
    proposal_approve(proposal=proposal, reviewer=lead)
    stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad prompt in the sweep", actor=Actor.user(lead))
    html = screen(client, lead, proposal)
    assert "Approved</strong>" in html and "Approved by Dana Lee" in html
    assert f"Not written yet: stopped (batch {batch.pk}" in html and "bad prompt in the sweep" in html
    proposals_apply(proposal_ids=[proposal.pk], worker="worker/1")  # the stop holds it
    assert "Not written yet" in screen(client, lead, proposal)


def test_an_applied_delete_says_it_was_deleted_not_that_the_record_is_gone(client, workflow, lead):
    workflow.actions = ["update", "delete"]
    workflow.save()
    customer = CustomerFactory()
    proposal = ProposalFactory(workflow=workflow, action="delete", record_id=customer.record_id, changes={})
    approved_and_written(proposal, lead)
    html = screen(client, lead, proposal)
    assert f"{customer.record_id} was deleted (soft: hidden, and restorable by Undo)" in html
    assert "The record is deleted." not in html and "The record is gone." not in html
    assert "Written as change" in html


def test_a_proposal_in_conflict_says_it_was_not_written_rather_than_if_approved(client, workflow, lead):
    proposal = ProposalFactory(workflow=workflow)
    proposal_approve(proposal=proposal, reviewer=lead)
    Customer.objects.filter(record_id=proposal.record_id).update(shipping_address="9 Quay Street, Leith")
    proposals_apply(proposal_ids=[proposal.pk], worker="worker/1")
    html = screen(client, lead, proposal)
    assert "Conflict</strong>" in html and "Approved by Dana Lee" in html
    assert f"{ALARM}</strong> shipping address: the AI saw “<strong>4 Old Mill Lane, Leith</strong>”" in html
    assert "So it was not written over the newer value." in html and "If approved" not in html
