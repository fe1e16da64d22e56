from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from approvals.intake.accounts import service_account_authenticate, service_account_create, service_account_revoke
from approvals.models import ServiceAccount
from audit.models import AuditEvent
from audit.services import Actor
from tests.helpers.factories import WorkflowFactory


def test_command_prints_the_token_once_on_its_last_line(db, capsys):
    workflow = WorkflowFactory(slug="address-updates")
    call_command("create_service_account", "--workflow", "address-updates", "--name", "nightly")
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("cs_")
    account = ServiceAccount.objects.get(workflow=workflow, name="nightly")
    assert token.startswith(f"cs_{account.token_prefix}_")
    assert service_account_authenticate(token=token) == account
    assert AuditEvent.objects.filter(action="token.created", workflow_slug="address-updates").exists()


def test_no_token_is_stored_in_plain_text(db):
    issued = service_account_create(workflow=WorkflowFactory(), name="p", actor=Actor.system())
    secret_part = issued.token.split("_", 2)[2]
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM approvals_serviceaccount")
        stored = " ".join(str(cell) for row in cursor.fetchall() for cell in row)
    assert secret_part not in stored
    assert issued.token not in stored


def test_revoked_expired_and_unknown_tokens_do_not_authenticate(db):
    workflow = WorkflowFactory()
    revoked = service_account_create(workflow=workflow, name="old", actor=Actor.system())
    service_account_revoke(account=revoked.account, actor=Actor.system())
    assert service_account_authenticate(token=revoked.token) is None
    expiring = service_account_create(
        workflow=workflow, name="short", actor=Actor.system(), expires_at=timezone.now() + timedelta(minutes=1)
    )
    ServiceAccount.objects.filter(pk=expiring.account.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert service_account_authenticate(token=expiring.token) is None
    assert service_account_authenticate(token="cs_00000000_guess") is None
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1


def test_last_used_is_noted_without_a_write_on_every_request(db, django_assert_num_queries):
    issued = service_account_create(workflow=WorkflowFactory(), name="p", actor=Actor.system())
    with django_assert_num_queries(2):
        service_account_authenticate(token=issued.token)
    with django_assert_num_queries(1):
        service_account_authenticate(token=issued.token)


def test_unknown_workflow_is_named(db):
    with pytest.raises(CommandError, match="--workflow: no workflow 'ghost'"):
        call_command("create_service_account", "--workflow", "ghost", "--name", "x")


@pytest.mark.parametrize("expires", ["next tuesday", "2027-01-31T00:00", "2027-02-30T00:00Z"])
def test_an_expiry_that_is_not_a_moment_with_a_zone_is_named_and_nothing_is_created(db, expires):
    WorkflowFactory(slug="address-updates")
    with pytest.raises(CommandError, match=f"--expires: '{expires}' is not an ISO date and time with a zone"):
        call_command("create_service_account", "--workflow", "address-updates", "--name", "x", "--expires", expires)
    assert not ServiceAccount.objects.exists()


def test_an_expiry_with_a_zone_is_kept(db):
    WorkflowFactory(slug="address-updates")
    call_command(
        "create_service_account", "--workflow", "address-updates", "--name", "x", "--expires", "2099-01-31T00:00Z"
    )
    expires_at = ServiceAccount.objects.get().expires_at
    assert expires_at is not None and expires_at.isoformat() == "2099-01-31T00:00:00+00:00"
