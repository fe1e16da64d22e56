"""Discarding a batch, by a person on its page or by its pipeline: its pending proposals become
`cancelled` with an event and a callback each, the batch takes no more, and what was decided is
left as it was (the page and the answer say how much was applied, and point at undo)."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from approvals import jobs
from approvals.applying.services import proposals_apply
from approvals.intake.accounts import service_account_create
from approvals.models import Batch, Proposal, ProposalStatus
from approvals.waiting.discard import batch_discard_by_person
from audit.models import AuditEvent
from audit.services import Actor
from core.errors import NotAllowed, ValidationFailed
from tests.helpers.factories import BatchFactory, CustomerFactory, ProposalFactory, UserFactory
from tests.helpers.overrides import on_call_workflow
from tests.helpers.pipeline import make_pipeline, make_workflow, proposal_body

pytestmark = pytest.mark.django_db

REASON = "the prompt misread the addresses"


@pytest.fixture
def on_call():  # type: ignore[no-untyped-def]
    return on_call_workflow()


@pytest.fixture
def sweep(on_call):  # type: ignore[no-untyped-def]
    """A batch of 7 from a pipeline with a callback: 2 applied, 1 approved to write, 1 rejected, 3 pending."""
    account = service_account_create(
        workflow=on_call.workflow, name="nightly", actor=Actor.system("test"), callback_url="http://127.0.0.1:9/cb"
    ).account
    batch = on_call.batch(name="Nightly sweep", service_account=account)
    approved = [on_call.proposal(batch=batch, service_account=account) for _ in range(3)]
    proposals_apply(proposal_ids=[p.pk for p in approved[:2]], worker="w/1")
    on_call.proposal(batch=batch, service_account=account, status=ProposalStatus.REJECTED)
    pending = [on_call.proposal(batch=batch, service_account=account, status=ProposalStatus.PENDING) for _ in range(3)]
    return batch, pending


def _statuses(batch: Batch) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in Proposal.objects.filter(batch=batch).values_list("status", flat=True):
        counts[status] = counts.get(status, 0) + 1
    return counts


def test_a_discard_cancels_the_pending_proposals_only_each_with_its_event_and_callback(
    on_call, sweep, queued, django_capture_on_commit_callbacks
):
    batch, pending = sweep
    with django_capture_on_commit_callbacks(execute=True):
        discarded = batch_discard_by_person(batch=batch, user=on_call.lead, reason=f"  {REASON} ")
    assert (discarded.cancelled, discarded.already) == (3, False)
    assert (discarded.standing.applied, discarded.standing.to_write, discarded.standing.pending) == (2, 1, 0)
    assert _statuses(batch) == {"applied": 2, "approved": 1, "rejected": 1, "cancelled": 3}
    batch.refresh_from_db()
    assert (batch.discarded_by_label, batch.discarded_by_user, batch.discard_reason) == ("lead", on_call.lead, REASON)
    assert batch.discard_cancelled == 3
    [event] = AuditEvent.objects.filter(action="batch.discarded")
    assert (event.batch_id, event.actor_label, event.reason) == (batch.pk, "lead", REASON)
    assert event.details == {"cancelled": 3, "applied": 2, "to_write": 1, "conflict": 0}
    cancelled = AuditEvent.objects.filter(action="proposal.cancelled").order_by("id")
    assert [e.proposal_id for e in cancelled] == [p.pk for p in pending]
    assert {(e.batch_id, e.actor_label, e.reason) for e in cancelled} == {(batch.pk, "lead", REASON)}
    assert [(sent.name, sent.args[:2]) for sent in queued] == [(jobs.CALLBACK, [p.pk, "cancelled"]) for p in pending]


def test_a_second_discard_does_nothing_more_and_says_the_batch_was_discarded(on_call, sweep):
    batch, _ = sweep
    batch_discard_by_person(batch=batch, user=on_call.lead, reason=REASON)
    other_lead = UserFactory()
    other_lead.groups.add(on_call.leads)
    again = batch_discard_by_person(batch=batch, user=other_lead, reason="once more")
    assert (again.cancelled, again.already) == (0, True)
    assert AuditEvent.objects.filter(action="batch.discarded").count() == 1
    assert AuditEvent.objects.filter(action="proposal.cancelled").count() == 3
    batch.refresh_from_db()
    assert (batch.discarded_by_label, batch.discard_reason) == ("lead", REASON)


def test_only_those_who_decide_the_workflow_may_discard_and_a_reason_is_required(on_call, sweep):
    batch, _ = sweep
    with pytest.raises(NotAllowed, match="only those who decide the proposals of address-updates"):
        batch_discard_by_person(batch=batch, user=on_call.ops, reason=REASON)
    with pytest.raises(ValidationFailed) as refused:
        batch_discard_by_person(batch=batch, user=on_call.lead, reason=" x ")
    assert refused.value.problems == [("reason", "say why the batch is discarded (it is kept in the trail)")]
    assert _statuses(batch)["pending"] == 3
    assert not AuditEvent.objects.filter(action__in=["batch.discarded", "proposal.cancelled"]).exists()


# The batch's page --------------------------------------------------------------------------------


def test_the_page_asks_first_then_discards_and_says_what_it_left(client, on_call, sweep):
    batch, _ = sweep
    client.force_login(on_call.lead)
    page = client.get(reverse("review-batch", args=[batch.pk])).content.decode()
    assert "<summary>Discard this batch</summary>" in page
    assert f"Discard batch {batch.pk} (Nightly sweep) and cancel its 3 pending proposals?" in page
    assert "2 applied changes stay (Undo takes them back)" in page
    assert f'href="/undo/?batch={batch.pk}">Undo the batch</a>' in page

    url = reverse("review-batch-discard", args=[batch.pk])
    # Sent without the answer (no JavaScript): the page asks the question in place, nothing changes.
    asked = client.post(url, {"reason": REASON})
    assert asked.status_code == 200
    assert 'class="confirm-step"' in asked.content.decode()
    assert _statuses(batch)["pending"] == 3
    # An answer for another count (a proposal arrived since the page was drawn) is asked again.
    assert 'class="confirm-step"' in client.post(url, {"reason": REASON, "confirmed": "2"}).content.decode()
    assert _statuses(batch)["pending"] == 3

    done = client.post(url, {"reason": REASON, "confirmed": "3"})
    assert done.status_code == 302 and done["Location"] == reverse("review-batch", args=[batch.pk])
    [message] = [str(m) for m in get_messages(done.wsgi_request)]
    assert message == (
        f"Discarded batch {batch.pk}: cancelled 3 pending proposals. 2 applied changes stay: undo the batch to take "
        "them back. 1 approved proposal will still be written unless you stop the batch."
    )
    assert _statuses(batch)["cancelled"] == 3
    after = client.get(reverse("review-batch", args=[batch.pk])).content.decode()
    assert "<strong>Discarded</strong>" in after and f"by lead: {REASON}. 3 pending proposals cancelled" in after
    assert "Discard this batch" not in after


def test_a_short_reason_is_said_next_to_the_box(client, on_call, sweep):
    batch, _ = sweep
    client.force_login(on_call.lead)
    response = client.post(reverse("review-batch-discard", args=[batch.pk]), {"reason": "no", "confirmed": "3"})
    assert response.status_code == 422
    assert (
        '<p class="error" id="discard-reason-error" role="alert">Say why the batch is discarded (it is kept in the '
        "trail)</p>" in response.content.decode()
    )
    assert _statuses(batch)["pending"] == 3


def test_someone_who_may_only_override_sees_no_discard_and_is_refused(client, on_call, sweep):
    batch, _ = sweep
    client.force_login(on_call.ops)
    assert "Discard this batch" not in client.get(reverse("review-batch", args=[batch.pk])).content.decode()
    refused = client.post(reverse("review-batch-discard", args=[batch.pk]), {"reason": REASON, "confirmed": "3"})
    assert refused.status_code == 403
    assert (
        '<p class="alert" role="alert">Only those who decide the proposals of address-updates (support-leads) may '
        "discard its batches</p>" in refused.content.decode()
    )
    client.force_login(on_call.agent)
    assert client.post(reverse("review-batch-discard", args=[batch.pk]), {"reason": REASON}).status_code == 404
    assert _statuses(batch)["pending"] == 3


# The pipeline API ---------------------------------------------------------------------------------


@pytest.fixture
def pipeline(db):  # type: ignore[no-untyped-def]
    return make_pipeline(make_workflow())


@pytest.fixture
def customer(db):  # type: ignore[no-untyped-def]
    return CustomerFactory(record_id="CUS-10432", shipping_address="4 Old Mill Lane, Leith")


def test_a_pipeline_discards_its_batch_and_it_takes_no_more(pipeline, customer):
    opened = pipeline.post("/api/v1/batches", {"name": "sweep", "run_id": "run-1", "expected_size": 2}).json()
    items = pipeline.post(f"/api/v1/batches/{opened['id']}/proposals", [proposal_body()]).json()
    assert items["accepted"] == 1

    response = pipeline.post(f"/api/v1/batches/{opened['id']}/discard", {"reason": REASON})
    assert response.status_code == 200, response.content
    answer = response.json()
    assert (answer["cancelled"], answer["already_discarded"], answer["undo_url"]) == (1, False, None)
    assert answer["counts"]["cancelled"] == 1 and answer["counts"]["pending"] == 0
    assert answer["discarded"]["by"] == "address-updates/nightly"
    assert (answer["discarded"]["reason"], answer["discarded"]["cancelled"]) == (REASON, 1)
    event = AuditEvent.objects.get(action="batch.discarded")
    assert (event.actor_kind, event.batch_id) == ("service_account", opened["id"])

    refused = pipeline.post(f"/api/v1/batches/{opened['id']}/proposals", [proposal_body()])
    assert refused.status_code == 409
    assert f"batch {opened['id']} was discarded" in refused.json()["detail"]
    again = pipeline.post(f"/api/v1/batches/{opened['id']}/discard", {"reason": "again"})
    assert again.status_code == 200
    assert (again.json()["cancelled"], again.json()["already_discarded"]) == (0, True)
    assert pipeline.get(f"/api/v1/batches/{opened['id']}").json()["discarded"]["reason"] == REASON


def test_the_answer_points_at_undo_when_some_of_the_batch_was_applied(pipeline):
    batch = BatchFactory(workflow=pipeline.workflow, service_account=pipeline.account)
    approved = ProposalFactory(workflow=pipeline.workflow, batch=batch, status=ProposalStatus.APPROVED)
    proposals_apply(proposal_ids=[approved.pk], worker="w/1")
    answer = pipeline.post(f"/api/v1/batches/{batch.pk}/discard", {"reason": REASON}).json()
    assert (answer["counts"]["applied"], answer["cancelled"]) == (1, 0)
    assert answer["undo_url"] == f"http://testserver/undo/?batch={batch.pk}"
    assert Proposal.objects.get(pk=approved.pk).status == ProposalStatus.APPLIED


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [({}, 422, "reason"), ({"reason": ""}, 422, "reason"), ({"reason": "ok", "why": "x"}, 422, "why")],
)
def test_a_discard_without_a_reason_is_422_naming_it(pipeline, body, status, field):
    batch = BatchFactory(workflow=pipeline.workflow)
    response = pipeline.post(f"/api/v1/batches/{batch.pk}/discard", body)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]]
    assert Batch.objects.get(pk=batch.pk).discarded_at is None


def test_an_unknown_batch_or_another_workflows_is_404(pipeline):
    theirs = BatchFactory(workflow=make_workflow(slug="refund-notes"))
    for batch_id in (theirs.pk, theirs.pk + 1000):
        response = pipeline.post(f"/api/v1/batches/{batch_id}/discard", {"reason": REASON})
        assert response.status_code == 404
        assert response.json()["errors"] == [{"field": "batch_id", "message": response.json()["detail"]}]
    assert Batch.objects.get(pk=theirs.pk).discarded_at is None
    assert pipeline.client.post(f"/api/v1/batches/{theirs.pk}/discard").status_code == 401
