"""The noticing keys of the workflow file: decide_within, expire_after, circuit_breaker and notify.
Refusals name the workflow and the key; a channel never holds a password written out."""

from datetime import timedelta
from typing import Any

import pytest

from approvals.models import Workflow
from approvals.workflows.loading import workflows_load
from audit.models import AuditEvent
from audit.services import Actor
from core.errors import ValidationFailed
from tests.helpers.factories import UserFactory

WORKFLOW: dict[str, Any] = {
    "slug": "address-updates",
    "name": "Address updates",
    "owner": "owner",
    "lane": "write",
    "stage": "draft",
    "approvers": "support-leads",
    "actions": ["update"],
    "fields": {"customer": {"shipping_address": "suggest"}},
}
BREAKER = {"window": 200, "min_samples": 20, "max_reject_rate": 0.2, "max_conflict_rate": 0.1, "max_undo_rate": 0.05}


@pytest.fixture
def owner(db):
    return UserFactory(username="owner")


def _load(**changes: Any) -> None:
    workflows_load(document={"workflows": [{**WORKFLOW, **changes}]}, actor=Actor.system("test"))


def _problems(**changes: Any) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as refused:
        _load(**changes)
    assert not Workflow.objects.exists()
    return dict(refused.value.problems)


def test_the_keys_are_stored_as_the_file_writes_them(owner):
    notify = [{"channel": "${SUPPORT_CHAT_URL}", "events": ["pending_digest", "sla_breach", "sla_breach"]}]
    _load(decide_within="2h", expire_after="3d", circuit_breaker=BREAKER, notify=notify)
    workflow = Workflow.objects.get()
    assert (workflow.decide_within, workflow.expire_after) == (timedelta(hours=2), timedelta(days=3))
    assert workflow.circuit_breaker == {**BREAKER, "max_reject_rate": 0.2}
    assert workflow.notify == [{"channel": "${SUPPORT_CHAT_URL}", "events": ["pending_digest", "sla_breach"]}]


def test_without_the_keys_nothing_is_overdue_nothing_expires_and_no_breaker_watches(owner):
    _load()
    workflow = Workflow.objects.get()
    assert (workflow.decide_within, workflow.expire_after, workflow.circuit_breaker, workflow.notify) == (
        None,
        None,
        None,
        [],
    )


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        ({"decide_within": "soon"}, "decide_within", "'soon' is not a window"),
        ({"decide_within": "0s"}, "decide_within", "must be longer than 0s"),
        ({"decide_within": "2h", "expire_after": "1h"}, "expire_after", "must be longer than decide_within (2h)"),
        ({"circuit_breaker": {"window": 200}}, "circuit_breaker", "names no limit"),
        ({"circuit_breaker": {**BREAKER, "max_reject_rate": 1.5}}, "circuit_breaker.max_reject_rate", "from 0 to 1"),
        ({"circuit_breaker": {**BREAKER, "min_samples": 300}}, "circuit_breaker.min_samples", "not be more than"),
        ({"circuit_breaker": {**BREAKER, "speed": 3}}, "circuit_breaker", "must be a mapping of"),
        ({"notify": [{"channel": "json://hooks.example.com/x", "events": ["lunch"]}]}, "notify[0].events", "drawn"),
        ({"notify": [{"events": ["conflict"]}]}, "notify[0].channel", "is required"),
        (
            {"notify": [{"channel": "mailtos://user:hunter2@mail.example.com", "events": ["conflict"]}]},
            "notify[0].channel",
            "holds a password: write ${NAME}",
        ),
    ],
)
def test_a_bad_key_refuses_the_file_naming_it(owner, changes, key, message):
    problems = _problems(**changes)
    assert message in problems[f"workflow 'address-updates': {key}"]


def test_a_change_of_the_sla_is_on_the_trail(owner):
    _load(decide_within="2h")
    _load(decide_within="4h")
    changed = AuditEvent.objects.get(action="workflow.changed")
    assert changed.old_value == {"decide_within": "2h"} and changed.new_value == {"decide_within": "4h"}
