import pytest

from approvals.models import StopScope, StopSwitch
from approvals.stops.selectors import describe_stop, stop_covering, stops_engaged_over
from approvals.stops.services import stop_engage, stop_release
from audit.models import AuditEvent
from audit.services import Actor
from core.errors import InvalidTransition, ValidationFailed
from tests.helpers.factories import BatchFactory, UserFactory, WorkflowFactory


def test_engage_and_release_a_batch_stop_are_audited(db):
    ops = UserFactory(username="ops")
    batch = BatchFactory()
    switch = stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad prompt", actor=Actor.user(ops), user=ops)
    assert stop_covering(workflow_id=batch.workflow_id, batch_id=batch.pk) == switch
    assert stop_covering(workflow_id=batch.workflow_id, batch_id=None) is None
    stop_release(switch=switch, user=ops)
    assert stop_covering(workflow_id=batch.workflow_id, batch_id=batch.pk) is None
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == ["stop.engaged", "stop.released"]


def test_global_stop_covers_every_workflow(db):
    switch = stop_engage(scope=StopScope.GLOBAL, reason="incident 42", actor=Actor.system())
    assert stop_covering(workflow_id=WorkflowFactory().pk, batch_id=None) == switch


def test_reason_is_required_and_double_engage_is_refused(db):
    workflow = WorkflowFactory()
    with pytest.raises(ValidationFailed, match="reason"):
        stop_engage(scope=StopScope.WORKFLOW, workflow=workflow, reason=" ", actor=Actor.system())
    assert not StopSwitch.objects.exists()
    stop_engage(scope=StopScope.WORKFLOW, workflow=workflow, reason="first", actor=Actor.system("cli"))
    with pytest.raises(InvalidTransition, match="already engaged by cli"):
        stop_engage(scope=StopScope.WORKFLOW, workflow=workflow, reason="second", actor=Actor.system())
    assert list(StopSwitch.objects.values_list("reason", flat=True)) == ["first"]
    assert AuditEvent.objects.filter(action="stop.engaged").count() == 1


def test_the_global_stop_is_named_first_when_several_cover_a_batch(db):
    batch = BatchFactory()
    stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad run", actor=Actor.system())
    covering = stop_covering(workflow_id=batch.workflow_id, batch_id=batch.pk)
    assert covering is not None and covering.scope == StopScope.BATCH
    everything = stop_engage(scope=StopScope.GLOBAL, reason="incident", actor=Actor.system())
    assert stop_covering(workflow_id=batch.workflow_id, batch_id=batch.pk, lock=True) == everything


def test_a_switch_is_described_one_way_wherever_a_write_waits_on_it(db):
    workflow = WorkflowFactory(slug="address-updates")
    batch = BatchFactory(workflow=workflow, name="Nightly sweep")
    labels = [
        stop_engage(scope=scope, reason="bad prompt", actor=Actor.system("ops"), **target).label
        for scope, target in (
            (StopScope.GLOBAL, {}),
            (StopScope.WORKFLOW, {"workflow": workflow}),
            (StopScope.BATCH, {"batch": batch}),
        )
    ]
    assert labels == ["everything", "workflow address-updates", f"batch {batch.pk} (Nightly sweep, address-updates)"]
    *_, batch_stop = stops_engaged_over(workflow_id=workflow.pk, batch_id=batch.pk)
    assert describe_stop(batch_stop).startswith(
        f"stopped (batch {batch.pk} (Nightly sweep, address-updates)) by ops at "
    )
