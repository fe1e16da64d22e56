"""What the operator commands share: who runs them, and naming a workflow or a batch."""

import getpass

import pytest
from django.core.management import CommandError, call_command

from approvals.models import StopSwitch
from audit.models import AuditEvent
from tests.helpers.factories import UserFactory, WorkflowFactory


@pytest.mark.parametrize(
    "command",
    [
        ["stop", "--workflow", "address-updates", "--reason", "bad prompt"],
        ["release", "--workflow", "address-updates"],
        ["rollback", "--workflow", "address-updates", "--since", "1h", "--reason", "bad prompt"],
    ],
)
@pytest.mark.parametrize("username", ["nobody", "gone"])
def test_every_command_refuses_a_user_who_is_not_an_active_person_the_same_way(db, command, username):
    WorkflowFactory(slug="address-updates")
    UserFactory(username="gone", is_active=False)
    with pytest.raises(CommandError, match=f"^--user: no active user '{username}'$"):
        call_command(*command, "--user", username)
    assert not AuditEvent.objects.exists()


def test_a_command_run_without_user_is_done_by_the_shell_login_and_with_one_by_that_person(db):
    WorkflowFactory(slug="address-updates")
    WorkflowFactory(slug="refund-notes")
    UserFactory(username="ops")
    call_command("stop", "--workflow", "address-updates", "--reason", "bad prompt")
    call_command("stop", "--workflow", "refund-notes", "--reason", "bad prompt", "--user", "ops")
    engaged = StopSwitch.objects.order_by("pk").values_list("engaged_by_label", "engaged_by_user__username")
    assert list(engaged) == [(f"cli:{getpass.getuser()}", None), ("ops", "ops")]


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["stop", "--workflow", "ghost", "--reason", "bad prompt"], "--workflow: no workflow 'ghost'"),
        (["rollback", "--workflow", "ghost", "--since", "1h", "--reason", "x"], "--workflow: no workflow 'ghost'"),
        (["create_service_account", "--workflow", "ghost", "--name", "n"], "--workflow: no workflow 'ghost'"),
        (["release", "--batch", "999", "--user", "ops"], "--batch: no batch 999"),
        (["rollback", "--batch", "999", "--reason", "x"], "--batch: no batch 999"),
    ],
)
def test_an_unknown_workflow_or_batch_is_refused_by_name(db, command, message):
    UserFactory(username="ops")
    with pytest.raises(CommandError, match=f"^{message}$"):
        call_command(*command)
