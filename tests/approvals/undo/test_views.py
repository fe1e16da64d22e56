"""The undo pages, through the test client (HTMX requests included)."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals.applying.services import Outcome, proposal_apply, proposals_apply
from approvals.models import FollowUp, FollowUpStatus, Proposal, ProposalStatus, UndoJob, UndoJobStatus
from approvals.undo.services import undo_job_run
from audit.models import AuditEvent
from records.models import Change, ChangeAction, Customer
from records.services.changes import ChangeOrigin, change_merge, change_update
from records.store import RecordRef
from tests.helpers.factories import (
    BatchFactory,
    CustomerFactory,
    OrderFactory,
    ProposalFactory,
    UserFactory,
    WorkflowFactory,
)
from tests.helpers.pages import error_after, error_messages
from tests.helpers.queued import Queued

EMAIL = {"kind": "email_customer", "params": {"template": "address-confirmed"}}
PERSON = ChangeOrigin(applied_by="dana")


@pytest.fixture
def ops(db, client):  # type: ignore[no-untyped-def]
    user = UserFactory(username="ops")
    user.groups.add(Group.objects.get_or_create(name="ops-managers")[0])
    client.force_login(user)
    return user


def applied_change(**kwargs) -> Change:  # type: ignore[no-untyped-def]
    customer = CustomerFactory(shipping_address="4 Old Mill Lane, Leith", priority="normal")
    proposal = ProposalFactory(
        record_id=customer.record_id,
        status=ProposalStatus.APPROVED,
        changes={"shipping_address": "12 Harbour Road, Leith", "priority": "high"},
        base={"shipping_address": "4 Old Mill Lane, Leith", "priority": "normal"},
        **kwargs,
    )
    assert proposal_apply(proposal_id=proposal.pk, worker="w/1").outcome == Outcome.APPLIED
    return Change.objects.get(proposal_id=proposal.pk)


def test_the_undo_page_shows_each_field_and_the_undo_button(client, ops):
    change = applied_change(follow_ups=[EMAIL])
    html = client.get(reverse("change-undo", args=[change.id])).content.decode()
    assert "Before the change" in html and "We wrote" in html and "Now" in html
    assert "4 Old Mill Lane, Leith" in html and "12 Harbour Road, Leith" in html
    assert ">Undo</button>" in html
    assert "not run yet — undo cancels it" in html


def test_undo_over_htmx_swaps_in_the_result(client, ops):
    change = applied_change(follow_ups=[EMAIL, {"kind": "webhook", "params": {"url": "http://127.0.0.1:18799/h"}}])
    FollowUp.objects.filter(change_id=change.id, position=1).update(status=FollowUpStatus.SENT)
    response = client.post(
        reverse("change-undo", args=[change.id]),
        {"field": ["shipping_address", "priority"], "reason": "wrong ticket"},
        headers={"HX-Request": "true"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="undo-panel"')
    assert "<strong>Undone.</strong>" in html and "Proposal now reverted." in html
    assert "Follow-ups cancelled before they ran: email the customer (address-confirmed)." in html
    assert "Call a webhook: <strong>sent — cannot be retracted</strong>" in html
    revert = Change.objects.get(reverts=change)
    assert reverse("change-undo", args=[revert.id]) in html
    customer = Customer.objects.get(record_id=change.record_id)
    assert (customer.shipping_address, customer.priority) == ("4 Old Mill Lane, Leith", "normal")
    assert AuditEvent.objects.filter(action="change.reverted", reason="wrong ticket", actor_label="ops").count() == 2


def test_a_conflict_is_shown_per_field_and_only_the_other_fields_can_be_undone(client, ops):
    change = applied_change()
    ref = RecordRef("customer", change.record_id)
    change_update(ref=ref, values={"shipping_address": "9 Typed Street"}, origin=PERSON)
    html = client.get(reverse("change-undo", args=[change.id])).content.decode()
    assert "Changed since" in html and "9 Typed Street" in html
    assert 'name="field" value="shipping_address"' not in html
    assert 'name="field" value="priority"' in html
    assert "Undo only the fields without a conflict, or leave the record alone." in html

    response = client.post(reverse("change-undo", args=[change.id]), {"field": ["priority"]})
    assert response.status_code == 200
    customer = Customer.objects.get(record_id=change.record_id)
    assert (customer.shipping_address, customer.priority) == ("9 Typed Street", "normal")
    assert "Left as they are: shipping address." in response.content.decode()


def test_posting_a_conflicting_field_writes_nothing_and_shows_the_record_now(client, ops):
    change = applied_change()
    change_update(
        ref=RecordRef("customer", change.record_id), values={"shipping_address": "9 Typed Street"}, origin=PERSON
    )
    response = client.post(reverse("change-undo", args=[change.id]), {"field": ["shipping_address", "priority"]})
    assert response.status_code == 409
    assert "nothing was written" in response.content.decode()
    assert Customer.objects.get(record_id=change.record_id).priority == "high"
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()


def test_a_merge_whose_duplicate_changed_since_cannot_be_undone_from_the_page(client, ops):
    survivor, duplicate = CustomerFactory(), CustomerFactory()
    order = OrderFactory(customer=duplicate)
    merge = change_merge(
        duplicate=RecordRef("customer", duplicate.record_id),
        survivor=RecordRef("customer", survivor.record_id),
        origin=ChangeOrigin(applied_by="dana", workflow_slug=WorkflowFactory(slug="duplicate-merge").slug),
    )
    Customer.objects.filter(pk=duplicate.pk).update(archived_at=None)
    html = client.get(reverse("change-undo", args=[merge.id])).content.decode()
    assert "It changed since: undoing would overwrite later changes." in html
    assert ">Undo</button>" not in html
    response = client.post(reverse("change-undo", args=[merge.id]), {"field": ["archived"]})
    assert response.status_code == 422
    assert "Nothing can be undone; leave the record alone." in response.content.decode()
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()
    order.refresh_from_db()
    assert order.customer == survivor


def test_without_the_right_there_is_no_button_and_a_post_is_refused(db, client):
    workflow = WorkflowFactory()
    change = applied_change(workflow=workflow)
    lead = UserFactory()
    client.force_login(lead)
    assert client.get(reverse("change-undo", args=[change.id])).status_code == 404  # out of their sight
    assign_perm("view_workflow", lead, workflow)
    html = client.get(reverse("change-undo", args=[change.id])).content.decode()
    assert ">Undo</button>" not in html and "You may not undo changes of" in html
    response = client.post(reverse("change-undo", args=[change.id]), {"field": ["priority"]})
    assert response.status_code == 403
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()
    assign_perm("rollback_workflow", lead, workflow)
    assert client.post(reverse("change-undo", args=[change.id]), {"field": ["priority"]}).status_code == 200


def test_an_undone_change_links_to_its_undo_which_can_be_undone(client, ops):
    change = applied_change()
    client.post(reverse("change-undo", args=[change.id]), {"field": ["shipping_address", "priority"]})
    revert = Change.objects.get(reverts=change)
    html = client.get(reverse("change-undo", args=[change.id])).content.decode()
    assert "Already undone" in html and reverse("change-undo", args=[revert.id]) in html
    html = client.get(reverse("change-undo", args=[revert.id])).content.decode()
    assert "undoing this puts that change back" in html and ">Undo</button>" in html
    client.post(reverse("change-undo", args=[revert.id]), {"field": ["shipping_address", "priority"]})
    assert Customer.objects.get(record_id=change.record_id).shipping_address == "12 Harbour Road, Leith"
    assert Proposal.objects.get(change_id=change.id).status == ProposalStatus.APPLIED


def applied_batch(size: int, *, conflict_at: int | None = None):  # type: ignore[no-untyped-def]
    batch = BatchFactory(name="address sweep")
    proposals = [
        ProposalFactory(workflow=batch.workflow, batch=batch, status=ProposalStatus.APPROVED, follow_ups=[EMAIL])
        for _ in range(size)
    ]
    proposals_apply(proposal_ids=[p.pk for p in proposals], worker="w/1")
    if conflict_at is not None:
        record = RecordRef("customer", proposals[conflict_at].record_id)
        change_update(ref=record, values={"shipping_address": "9 Typed Street"}, origin=PERSON)
    return batch, proposals


def test_the_bulk_page_shows_the_dry_run_then_starts_the_job(client, ops, queued, django_capture_on_commit_callbacks):
    batch, proposals = applied_batch(4, conflict_at=1)
    response = client.get(reverse("undo-bulk"), {"scope": "batch", "batch": batch.pk})
    html = response.content.decode()
    assert "Dry run: batch" in html
    assert "<strong>4</strong> changes to undo" in html
    assert "<strong>1</strong> conflict:" in html
    assert "<strong>4</strong> not run yet (cancelled by the undo)" in html
    assert "9 Typed Street" in html
    assert not Change.objects.filter(action=ChangeAction.REVERT).exists()

    # Without JavaScript the form comes back once, asking the question the dialog asks.
    start = {"scope": "batch", "batch": batch.pk, "reason": "bad sweep"}
    response = client.post(reverse("undo-bulk"), start)
    html = response.content.decode()
    assert response.status_code == 200
    assert f"Undo 4 changes in batch {batch.pk} (address sweep)?" in html
    assert "1 record changed since: left as it is." in html
    assert '<button type="submit" name="confirmed" value="4" class="danger" autofocus>Undo 4 changes</button>' in html
    assert f'<a href="{reverse("undo-bulk")}?scope=batch&amp;batch={batch.pk}">Cancel</a>' in html
    assert ">bad sweep</textarea>" in html
    assert not UndoJob.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("undo-bulk"), {**start, "confirmed": "4"})
    job = UndoJob.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("undo-job", args=[job.pk])
    # (the stop the job engaged on its batch is told as a notice, queued for delivery too)
    assert [item for item in queued if item.name != "approvals.deliver_notices"] == [
        Queued("approvals.run_undo_job", [job.pk])
    ]
    assert (job.total, job.status, job.reason) == (4, UndoJobStatus.QUEUED, "bad sweep")


def test_the_bulk_page_refuses_a_bad_selection_naming_the_field(client, ops):
    response = client.get(reverse("undo-bulk"), {"scope": "batch", "batch": 999})
    assert response.status_code == 422
    assert error_after(response, "id_batch") == "There is no batch 999."
    response = client.get(reverse("undo-bulk"), {"scope": "workflow"})
    assert response.status_code == 422
    assert error_after(response, "id_since") == "Say from when its changes are undone."
    response = client.post(reverse("undo-bulk"), {"scope": "batch", "batch": 999, "reason": "bad sweep"})
    assert response.status_code == 422
    assert error_after(response, "id_batch") == "There is no batch 999."
    assert not UndoJob.objects.exists()


def test_the_job_page_polls_while_running_and_stops_polling_when_done(client, ops, django_assert_num_queries):
    batch, _ = applied_batch(3, conflict_at=0)
    client.post(reverse("undo-bulk"), {"scope": "batch", "batch": batch.pk, "reason": "bad sweep", "confirmed": "3"})
    job = UndoJob.objects.get()
    page = client.get(reverse("undo-job", args=[job.pk])).content.decode()
    assert '<progress class="progress" aria-label="Changes undone" max="3" value="0"' in page and "0 / 3" in page
    assert 'hx-trigger="every 1s"' in page and ">Cancel</button>" in page

    undo_job_run(job_id=job.pk, worker="w/1")
    partial = client.get(reverse("undo-job", args=[job.pk]), headers={"HX-Request": "true"}).content.decode()
    assert partial.lstrip().startswith('<section id="undo-progress"')
    assert "hx-trigger" not in partial and ">Cancel</button>" not in partial
    assert "3 / 3" in partial and "1 conflict" in partial
    assert "9 Typed Street" in partial
    assert f"Batch {batch.pk} is still stopped" in partial


def test_the_job_page_reads_a_fixed_number_of_queries(client, ops, django_assert_num_queries):
    for size in (2, 6):
        batch, _ = applied_batch(size, conflict_at=0)
        for proposal in Proposal.objects.filter(batch=batch)[1:]:
            change_update(ref=RecordRef("customer", proposal.record_id), values={"priority": "urgent"}, origin=PERSON)
            change_update(
                ref=RecordRef("customer", proposal.record_id), values={"shipping_address": "typed"}, origin=PERSON
            )
        start = {"scope": "batch", "batch": batch.pk, "reason": "bad sweep", "confirmed": str(size)}
        client.post(reverse("undo-bulk"), start)
        job = UndoJob.objects.get(batch=batch)
        undo_job_run(job_id=job.pk, worker="w/1")
        assert job.items.filter(outcome="conflict").count() == size
        # session, user, the job, ops membership, what ops may see (groups; workflows), conflicts, failures,
        # and what the stop the job kept still holds (proposals; follow-ups)
        with django_assert_num_queries(10):
            client.get(reverse("undo-job", args=[job.pk]), headers={"HX-Request": "true"})


def test_cancel_from_the_job_page(client, ops):
    batch, _ = applied_batch(2)
    client.post(reverse("undo-bulk"), {"scope": "batch", "batch": batch.pk, "reason": "bad sweep", "confirmed": "2"})
    job = UndoJob.objects.get()
    response = client.post(reverse("undo-job-cancel", args=[job.pk]), headers={"HX-Request": "true"})
    assert "Cancelled before it started" in response.content.decode()
    assert UndoJob.objects.get().status == UndoJobStatus.CANCELLED


def test_the_workflows_page_offers_undo_and_shows_the_last_drill(client, ops):
    from approvals.models import RollbackDrill

    WorkflowFactory(slug="address-updates")
    html = client.get(reverse("workflow-list")).content.decode()
    assert "Rollback drill:" in html and "never run" in html
    RollbackDrill.objects.create(
        records=20,
        changes=20,
        workflow_slug="rollback-drill",
        passed=True,
        timings={"apply": 0.2, "undo": 0.1},
        ran_by="rollback_drill",
    )
    html = client.get(reverse("workflow-list")).content.decode()
    assert "passed</strong>" in html and "undo 0.10 s" in html
    assert reverse("undo-bulk") in html


def test_a_batch_link_lands_on_its_dry_run_and_a_workflow_takes_a_time_from_the_browser(client, ops):
    batch, proposals = applied_batch(2)
    html = client.get(reverse("undo-bulk"), {"batch": batch.pk}).content.decode()
    assert "Dry run: batch" in html and "<strong>2</strong> changes to undo" in html

    since = (timezone.now() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    html = client.get(
        reverse("undo-bulk"), {"scope": "workflow", "workflow": batch.workflow.slug, "since": since}
    ).content.decode()
    assert f"Dry run: workflow {batch.workflow.slug} since" in html and "<strong>2</strong> changes" in html
    response = client.get(
        reverse("undo-bulk"),
        {"scope": "workflow", "workflow": batch.workflow.slug, "since": since, "until": "2001-01-01T00:00"},
    )
    assert response.status_code == 422 and error_after(response, "id_until") == "Must be later than Since."


def test_starting_an_undo_without_a_reason_says_so_next_to_the_reason_box(client, ops):
    batch, _ = applied_batch(2)
    response = client.post(reverse("undo-bulk"), {"scope": "batch", "batch": batch.pk, "reason": " ", "confirmed": "2"})
    assert response.status_code == 422
    assert error_messages(response) == ["say why these changes are being undone (it is kept in the trail)"]
    assert error_after(response, "undo-reason") == error_messages(response)[0]
    assert "reason:" not in response.content.decode()
    assert not UndoJob.objects.exists()
