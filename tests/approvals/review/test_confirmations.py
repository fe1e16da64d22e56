"""Approving a delete, a merge or a whole group asks first, naming what will happen; approving an
update of one record does not."""

import pytest
from django.urls import reverse

from approvals.models import Action, Proposal, ProposalStatus
from approvals.review.confirmations import group_confirmation
from approvals.review.groups import GroupKey
from audit.models import AuditEvent
from tests.helpers.factories import BatchFactory, CustomerFactory, OrderFactory, ProposalFactory, TicketFactory
from tests.helpers.seeing import let_see
from tests.helpers.sight import looked_at

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def every_action(workflow):  # type: ignore[no-untyped-def]
    workflow.actions = ["update", "archive", "delete", "merge"]
    workflow.save()
    return workflow


def test_approving_a_delete_asks_first_naming_the_record(client, every_action, lead):
    customer = CustomerFactory()
    proposal = ProposalFactory(workflow=every_action, action="delete", record_id=customer.record_id, changes={})
    client.force_login(lead)
    html = client.get(reverse("review-detail", args=[proposal.pk])).content.decode()
    assert 'data-confirm="confirm-approve"' in html
    assert '<dialog id="confirm-approve" class="confirm"' in html
    assert f"Delete customer {customer.record_id}?" in html
    assert (
        '<button type="submit" name="confirmed" value="delete" class="danger" autofocus>Approve delete</button>' in html
    )

    # A form sent without the answer (no JavaScript) is asked the question in the page; nothing is decided.
    url = reverse("review-approve", args=[proposal.pk])
    response = client.post(url, {**looked_at(proposal, lead), "note": "Closed account, asked by phone"})
    html = response.content.decode()
    assert response.status_code == 200
    assert '<div class="confirm-step" role="group"' in html and '<dialog id="confirm-approve"' not in html
    assert f"Delete customer {customer.record_id}?" in html
    assert 'value="Closed account, asked by phone"' in html  # the note typed is kept
    assert f'<a href="{reverse("review-detail", args=[proposal.pk])}">Cancel</a>' in html
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.PENDING
    assert not AuditEvent.objects.filter(action__startswith="proposal.").exclude(action="proposal.submitted").exists()

    # The answer for another action is not this one's.
    response = client.post(url, {**looked_at(proposal, lead), "confirmed": "merge"})
    assert (response.status_code, Proposal.objects.get(pk=proposal.pk).status) == (200, ProposalStatus.PENDING)

    response = client.post(url, {**looked_at(proposal, lead), "confirmed": "delete"})
    assert response.status_code == 302
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.APPROVED


def test_approving_a_merge_asks_first_naming_both_records_and_what_moves(client, every_action, lead):
    duplicate, survivor = CustomerFactory(), CustomerFactory()
    for _ in range(3):
        OrderFactory(customer=duplicate)
    for _ in range(2):
        TicketFactory(customer=duplicate)
    proposal = ProposalFactory(
        workflow=every_action,
        action="merge",
        record_id=duplicate.record_id,
        merge_into=survivor.record_id,
        changes={},
        base={},
    )
    client.force_login(lead)
    question = f"Merge {duplicate.record_id} into {survivor.record_id}: 3 orders and 2 tickets move"
    html = client.get(reverse("review-detail", args=[proposal.pk])).content.decode()
    assert question in html and ">Approve merge</button>" in html

    response = client.post(reverse("review-approve", args=[proposal.pk]), looked_at(proposal, lead), **HTMX)
    html = response.content.decode()
    assert response.status_code == 200 and "HX-Trigger" not in response
    assert html.lstrip().startswith('<article class="proposal"') and question in html
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.PENDING

    seen = looked_at(proposal, lead) | {"confirmed": "merge"}
    response = client.post(reverse("review-approve", args=[proposal.pk]), seen, **HTMX)
    assert "proposalDecided" in response["HX-Trigger"]
    assert Proposal.objects.get(pk=proposal.pk).status == ProposalStatus.APPROVED


def test_approving_an_update_asks_nothing_and_rejecting_a_delete_asks_nothing(client, every_action, lead):
    update = ProposalFactory(workflow=every_action)
    delete = ProposalFactory(workflow=every_action, action="delete", changes={})
    client.force_login(lead)
    html = client.get(reverse("review-detail", args=[update.pk])).content.decode()
    assert "data-confirm" not in html and '<dialog id="confirm-approve"' not in html
    assert client.post(reverse("review-approve", args=[update.pk]), looked_at(update, lead)).status_code == 302
    rejected = {**looked_at(delete, lead), "reason": "The customer wants to stay"}
    assert client.post(reverse("review-reject", args=[delete.pk]), rejected).status_code == 302
    statuses = dict(Proposal.objects.values_list("pk", "status"))
    assert (statuses[update.pk], statuses[delete.pk]) == (ProposalStatus.APPROVED, ProposalStatus.REJECTED)


@pytest.mark.parametrize(
    ("key", "question"),
    [
        (GroupKey(Action.UPDATE, ("shipping_address",), "p@1"), "Approve 30 shipping address changes in batch {}?"),
        (GroupKey(Action.UPDATE, ("phone", "priority"), "p@1"), "Approve 30 phone and priority changes in batch {}?"),
        (GroupKey(Action.ARCHIVE, (), "p@1"), "Approve archiving 30 records in batch {}?"),
        (GroupKey(Action.DELETE, (), "p@1"), "Approve deleting 30 records in batch {}?"),
        (GroupKey(Action.MERGE, (), "p@1"), "Approve 30 merges in batch {}?"),
    ],
)
def test_a_group_s_question_names_how_many_of_what_in_which_batch(workflow, key, question):
    batch = BatchFactory(workflow=workflow)
    confirmation = group_confirmation(batch=batch, key=key, count=30)
    assert confirmation.question == question.format(batch.pk)
    assert (confirmation.verb, confirmation.answer) == ("Approve 30", "30")


def test_a_group_s_question_says_what_each_sends_once_applied(workflow):
    batch = BatchFactory(workflow=workflow)
    key = GroupKey(Action.UPDATE, ("shipping_address",), "p@1", (("email_customer", "address-confirmed"),))
    detail = group_confirmation(batch=batch, key=key, count=1).detail
    assert detail == "Each is approved and recorded on its own. Once applied, each also sends: " + (
        "Email the customer (address-confirmed)."
    )
    assert group_confirmation(batch=batch, key=key, count=1).question.startswith("Approve 1 shipping address change ")


def test_someone_who_may_not_approve_a_delete_is_refused_rather_than_asked(client, every_action, agent):
    proposal = ProposalFactory(workflow=every_action, action="delete", changes={}, requested_by="agent")
    client.force_login(let_see(agent, every_action))  # a requester looks only where they may see
    response = client.post(reverse("review-approve", args=[proposal.pk]), looked_at(proposal, agent))
    assert response.status_code == 403
    assert "You asked for this change, so someone else must decide it" in response.content.decode()
    assert AuditEvent.objects.get(action="proposal.decision_refused").details["refusal"] == "requester"
