"""The stop a batch undo engages holds the batch while the undo runs, and does not linger after it:
released when the job ends, unless some of the batch is still left for it to hold."""

from django.urls import reverse

from approvals.applying.services import Outcome, proposals_apply
from approvals.models import ProposalStatus, StopSwitch, UndoScope
from approvals.undo.selectors import UndoSelection
from approvals.undo.services import undo_job_cancel, undo_job_run, undo_job_start
from audit.models import AuditEvent
from audit.services import Actor
from tests.approvals.undo.test_services import WORKER, applied_batch, ops_user
from tests.helpers.factories import ProposalFactory


def _undo(batch, user):  # type: ignore[no-untyped-def]
    selection = UndoSelection(scope=UndoScope.BATCH, batch=batch)
    actor = Actor.user(user) if user else Actor.system("cli:root")
    return undo_job_start(selection=selection, actor=actor, user=user, reason="the sweep garbled them", queue=False)


def test_the_stop_an_undo_engaged_is_released_when_it_ends_and_leaves_the_banner(client, db):
    ops = ops_user()
    batch, _, _ = applied_batch(3)
    job = _undo(batch, ops)
    switch = StopSwitch.objects.get(batch=batch)
    assert job.stop == switch and switch.released_at is None
    client.force_login(ops)
    assert "undoing the batch" in client.get(reverse("workflow-list")).content.decode()

    job = undo_job_run(job_id=job.pk, worker=WORKER)

    switch.refresh_from_db()
    assert (switch.released_by, job.reverted) == (ops, 3)
    event = AuditEvent.objects.get(action="stop.released")
    assert (event.actor_label, event.reason, event.details["undo_job"]) == ("ops", f"undo job {job.pk} ended", job.pk)
    assert list(
        AuditEvent.objects.filter(action__in=["undo.finished", "stop.released"])
        .values_list("action", flat=True)
        .order_by("id")
    ) == ["undo.finished", "stop.released"]
    assert "undoing the batch" not in client.get(reverse("workflow-list")).content.decode()
    page = client.get(reverse("undo-job", args=[job.pk])).content.decode()
    assert f"The stop this undo engaged on batch {batch.pk} was released when it ended" in page
    assert "is still stopped" not in page


def test_a_cancelled_undo_releases_its_stop_too(db):
    ops = ops_user()
    batch, _, _ = applied_batch(2)
    job = _undo(batch, ops)
    undo_job_cancel(job=job, actor=Actor.user(ops), user=ops)
    assert StopSwitch.objects.get(batch=batch).released_by == ops


def test_the_stop_stays_while_some_of_the_batch_is_left_for_it_to_hold(client, db):
    ops = ops_user()
    batch, _, _ = applied_batch(2)
    late = ProposalFactory(workflow=batch.workflow, batch=batch, status=ProposalStatus.APPROVED)
    ProposalFactory(workflow=batch.workflow, batch=batch, status=ProposalStatus.PENDING)
    job = _undo(batch, ops)
    job = undo_job_run(job_id=job.pk, worker=WORKER)

    switch = StopSwitch.objects.get(batch=batch)
    assert switch.released_at is None
    assert [r.outcome for r in proposals_apply(proposal_ids=[late.pk], worker=WORKER)] == [Outcome.STOPPED]
    client.force_login(ops)
    page = client.get(reverse("undo-job", args=[job.pk])).content.decode()
    assert (
        f"Batch {batch.pk} is still stopped: 2 proposals pending, approved or in conflict of it would go through "
        "once it is released."
    ) in page


def test_a_follow_up_still_held_keeps_the_stop(db):
    ops = ops_user()
    batch, customers, proposals = applied_batch(
        2, follow_ups=[{"kind": "email_customer", "params": {"template": "address-confirmed"}}]
    )
    from records.services.changes import ChangeOrigin, change_update
    from records.store import RecordRef

    # The record changed since, so that change stays in force, and so does its follow-up.
    change_update(
        ref=RecordRef("customer", customers[0].record_id),
        values={"shipping_address": "typed"},
        origin=ChangeOrigin(applied_by="dana"),
    )
    job = undo_job_run(job_id=_undo(batch, ops).pk, worker=WORKER)
    assert job.conflicts == 1
    assert StopSwitch.objects.get(batch=batch).released_at is None


def test_an_undo_no_person_started_leaves_its_stop_for_a_person(db):
    batch, _, _ = applied_batch(2)
    job = undo_job_run(job_id=_undo(batch, None).pk, worker=WORKER)
    assert job.reverted == 2
    assert StopSwitch.objects.get(batch=batch).released_at is None
