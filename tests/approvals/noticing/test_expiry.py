"""Proposals that expire: beat moves pending proposals older than their workflow's expire_after to
`expired`, one `proposal.expired` event each, and queues each pipeline's callback. Younger ones,
decided ones and those of a workflow without expire_after are left alone, and so is one a reviewer
is deciding at that moment."""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction

from approvals import jobs
from approvals.intake.accounts import service_account_create
from approvals.models import Proposal, ProposalStatus
from approvals.review.services import proposal_approve
from approvals.waiting.expiry import proposals_expire_due
from approvals.waiting.tasks import expire_proposals
from audit.models import AuditEvent
from audit.services import Actor
from core.errors import InvalidTransition
from tests.helpers.factories import ProposalFactory, WorkflowFactory
from tests.helpers.overrides import NIGHT, on_call_workflow

EXPIRE = timedelta(days=3)


@pytest.mark.django_db
def test_only_pending_proposals_past_expire_after_expire_each_with_its_event_and_callback(
    queued, django_capture_on_commit_callbacks
):
    on_call = on_call_workflow(expire_after=EXPIRE)
    account = service_account_create(
        workflow=on_call.workflow, name="nightly", actor=Actor.system("test"), callback_url="http://127.0.0.1:9/cb"
    ).account
    forever = WorkflowFactory(slug="ticket-triage")
    with time_machine.travel(NIGHT - EXPIRE, tick=False):
        due = on_call.proposal(status=ProposalStatus.PENDING, service_account=account)
        decided = on_call.proposal(status=ProposalStatus.APPROVED, service_account=account)
        unbounded = ProposalFactory(workflow=forever, status=ProposalStatus.PENDING)
    with time_machine.travel(NIGHT - EXPIRE + timedelta(seconds=1), tick=False):
        young = on_call.proposal(status=ProposalStatus.PENDING, service_account=account)

    with time_machine.travel(NIGHT, tick=False), django_capture_on_commit_callbacks(execute=True):
        assert proposals_expire_due() == 1
        assert proposals_expire_due() == 0

    statuses = dict(Proposal.objects.values_list("pk", "status"))
    assert statuses == {
        due.pk: "expired",
        decided.pk: "approved",
        unbounded.pk: "pending",
        young.pk: "pending",
    }
    [event] = AuditEvent.objects.filter(action="proposal.expired")
    assert (event.proposal_id, event.actor_kind, event.actor_label) == (due.pk, "system", "proposal-expiry")
    assert event.reason == "nobody decided it within 3d, its workflow's expire_after"
    assert (event.workflow_slug, event.prompt_version) == ("address-updates", due.prompt_version)
    assert [(sent.name, sent.args[:2]) for sent in queued] == [(jobs.CALLBACK, [due.pk, "expired"])]
    due.refresh_from_db()
    assert (due.updated_at, due.revision, due.decided_at) == (NIGHT, 2, None)


@pytest.mark.django_db
def test_the_beat_task_expires_a_backlog_a_chunk_at_a_time(monkeypatch):
    on_call = on_call_workflow(expire_after=EXPIRE)
    with time_machine.travel(NIGHT - 2 * EXPIRE, tick=False):
        for _ in range(7):
            on_call.proposal(status=ProposalStatus.PENDING)
    monkeypatch.setattr("approvals.waiting.tasks.EXPIRE_CHUNK", 3)
    with time_machine.travel(NIGHT, tick=False):
        assert expire_proposals() == 7  # 3, 3, then 1: the last chunk is short, so nothing is left
    assert Proposal.objects.filter(status=ProposalStatus.EXPIRED).count() == 7
    assert AuditEvent.objects.filter(action="proposal.expired").count() == 7


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_proposal_a_reviewer_is_deciding_is_left_to_the_decision():
    on_call = on_call_workflow(expire_after=EXPIRE)
    proposal = on_call.proposal(status=ProposalStatus.PENDING, created_at=NIGHT - 2 * EXPIRE)
    locked, release = threading.Event(), threading.Event()

    def reviewer_holds_the_row() -> None:
        # As the reviewer's decision does: the proposal's row locked until the decision commits.
        try:
            with transaction.atomic():
                Proposal.objects.select_for_update().get(pk=proposal.pk)
                locked.set()
                release.wait(timeout=10)
                Proposal.objects.filter(pk=proposal.pk).update(status=ProposalStatus.REJECTED)
        finally:
            connection.close()

    reviewer = threading.Thread(target=reviewer_holds_the_row)
    reviewer.start()
    assert locked.wait(timeout=10)
    try:
        assert proposals_expire_due() == 0  # skipped, not waited for
    finally:
        release.set()
        reviewer.join(timeout=10)
    assert proposals_expire_due() == 0  # decided by then: left alone
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.REJECTED
    assert not AuditEvent.objects.filter(action="proposal.expired").exists()


@pytest.mark.django_db
def test_a_reviewer_who_opened_an_expired_proposal_can_no_longer_approve_it():
    on_call = on_call_workflow(expire_after=EXPIRE)
    with time_machine.travel(NIGHT - EXPIRE, tick=False):
        proposal = on_call.proposal(status=ProposalStatus.PENDING)
    with time_machine.travel(NIGHT, tick=False):
        proposals_expire_due()
    with pytest.raises(InvalidTransition, match="was already expired; nothing was changed"):
        proposal_approve(proposal=proposal, reviewer=on_call.lead)
    proposal.refresh_from_db()
    assert proposal.status == ProposalStatus.EXPIRED
