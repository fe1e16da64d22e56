"""Two owners acting at the same moment, on a real PostgreSQL: one change per rule waits, and a change
is carried out once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from approvals.models import RetentionChange, RetentionChangeStatus, RetentionRule
from approvals.retention.services import (
    retention_change_countersign,
    retention_change_propose,
    retention_change_withdraw,
)
from audit.models import AuditEvent
from audit.services import audit_verify_chain
from core.errors import ApplicationError
from tests.helpers.factories import ArtifactFactory, RetentionRuleFactory, UserFactory, WorkflowFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _at_once(*works):
    """Run each of `works` in its own thread and connection, started together; what each raised."""
    start = threading.Barrier(len(works))
    refused: list[ApplicationError] = []

    def run(work):
        try:
            start.wait()
            work()
        except ApplicationError as error:
            refused.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(work,)) for work in works]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread hung"
    return refused


@pytest.fixture
def two_owners():
    owner = UserFactory(username="owner")
    security = UserFactory(username="security")
    workflow = WorkflowFactory(slug="refund-notes", owner=owner, retention_co_owner=security)
    rule = RetentionRuleFactory(workflow=workflow, kind="prompt", bucket="live", window=timedelta(days=7))
    return owner, security, rule


def test_two_owners_proposing_at_once_leave_one_change_waiting(two_owners):
    owner, security, rule = two_owners
    refused = _at_once(
        lambda: retention_change_propose(rule=rule, user=owner, window=timedelta(days=1)),
        lambda: retention_change_propose(rule=rule, user=security, window=timedelta(days=2)),
    )
    assert [str(error) for error in refused] == [
        "a change to the prompt/live rule is already waiting for its second owner: "
        "countersign, reject or withdraw it first"
    ]
    assert RetentionChange.objects.filter(status=RetentionChangeStatus.PENDING).count() == 1
    assert AuditEvent.objects.filter(action="retention.change_proposed").count() == 1


def test_a_countersign_and_a_withdrawal_at_once_decide_the_change_once(two_owners):
    owner, security, rule = two_owners
    artifact = ArtifactFactory.create(rule=rule)
    change = retention_change_propose(rule=rule, user=owner, window=timedelta(days=1))
    refused = _at_once(
        lambda: retention_change_countersign(change=change, user=security),
        lambda: retention_change_withdraw(change=change, user=owner),
    )
    assert len(refused) == 1 and "this change was already" in str(refused[0])
    change.refresh_from_db()
    decided = AuditEvent.objects.filter(action__in=["retention.changed", "retention.change_withdrawn"])
    assert decided.count() == 1
    artifact.refresh_from_db()
    window = RetentionRule.objects.get(pk=rule.pk).window
    if change.status == RetentionChangeStatus.APPLIED:
        assert window == timedelta(days=1) and change.countersigned_by == security
    else:
        assert change.status == RetentionChangeStatus.WITHDRAWN and window == timedelta(days=7)
    assert artifact.expires_at == artifact.created_at + window
    assert audit_verify_chain()[1] is None
