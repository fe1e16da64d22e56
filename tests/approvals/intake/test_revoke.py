"""Revoking a service account: from the terminal (`revoke_service_account`) and, by the workflow's
owner only, from the workflows page. Either way it is in the trail and the token is refused at once."""

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from guardian.shortcuts import assign_perm

from approvals.models import ServiceAccount
from audit.models import AuditEvent
from tests.helpers.factories import CustomerFactory, GroupFactory, UserFactory
from tests.helpers.pipeline import make_pipeline, make_workflow

RECORD = "/api/v1/records/customer/CUS-10432"


@pytest.fixture
def owner(db):  # type: ignore[no-untyped-def]
    return UserFactory(username="owner", password="owner", first_name="Morgan", last_name="Hale")


@pytest.fixture
def pipeline(owner):  # type: ignore[no-untyped-def]
    CustomerFactory(record_id="CUS-10432")
    return make_pipeline(make_workflow(owner=owner), name="nightly")


@pytest.fixture
def lead(pipeline):  # type: ignore[no-untyped-def]
    """A support lead who may see the workflow (its approver group) but does not own it."""
    lead = UserFactory(username="lead", password="lead")
    leads = GroupFactory(name="support-leads")
    lead.groups.add(leads)
    assign_perm("approvals.view_workflow", leads, pipeline.workflow)
    return lead


def revoke_url(pipeline) -> str:  # type: ignore[no-untyped-def]
    return reverse("service-account-revoke", args=[pipeline.workflow.slug, pipeline.account.pk])


def test_the_command_revokes_says_so_and_the_token_is_refused_at_once(pipeline, capsys):
    assert pipeline.get(RECORD).status_code == 200
    call_command("revoke_service_account", "--workflow", "address-updates", "--name", "nightly")
    said = capsys.readouterr().out
    assert "Service account address-updates/nightly revoked at " in said
    assert f"cs_{pipeline.account.token_prefix}_" in said
    assert pipeline.get(RECORD).status_code == 401
    event = AuditEvent.objects.get(action="token.revoked")
    assert (event.actor_label, event.workflow_slug, event.details["name"]) == (
        "revoke_service_account",
        "address-updates",
        "nightly",
    )


@pytest.mark.parametrize(
    ("workflow", "name", "refusal"),
    [
        ("ghost", "nightly", "--workflow: no workflow 'ghost'"),
        ("address-updates", "daily", "--name: workflow address-updates has no service account 'daily'"),
    ],
)
def test_the_command_names_an_unknown_workflow_or_account(pipeline, workflow, name, refusal):
    with pytest.raises(CommandError) as refused:
        call_command("revoke_service_account", "--workflow", workflow, "--name", name)
    assert str(refused.value) == refusal
    assert not AuditEvent.objects.filter(action="token.revoked").exists()


def test_the_command_refuses_an_account_already_revoked(pipeline):
    call_command("revoke_service_account", "--workflow", "address-updates", "--name", "nightly")
    with pytest.raises(CommandError, match="service account address-updates/nightly was already revoked at "):
        call_command("revoke_service_account", "--workflow", "address-updates", "--name", "nightly")
    assert AuditEvent.objects.filter(action="token.revoked").count() == 1


def test_the_workflows_page_shows_each_account_s_state_and_the_owner_a_revoke_button(client, owner, pipeline):
    make_pipeline(pipeline.workflow, name="backfill")
    pipeline.get(RECORD)  # notes when the nightly token was last used
    call_command("revoke_service_account", "--workflow", "address-updates", "--name", "backfill")
    client.force_login(owner)
    html = client.get(reverse("workflow-list")).content.decode()
    assert "nightly · active, last used " in html
    assert "backfill · revoked " in html
    assert html.count(">Revoke</a>") == 1
    assert f'href="{revoke_url(pipeline)}" aria-label="Revoke nightly"' in html


def test_the_owner_confirms_then_revokes_and_the_api_refuses_the_token_at_once(client, owner, pipeline):
    client.force_login(owner)
    confirm = client.get(revoke_url(pipeline)).content.decode()
    assert "Revoke <strong>nightly</strong> of <code>address-updates</code>?" in confirm
    assert pipeline.get(RECORD).status_code == 200

    done = client.post(revoke_url(pipeline), follow=True)

    assert done.redirect_chain[-1][0] == reverse("workflow-list")
    assert "Service account address-updates/nightly revoked: its token is refused from now on." in done.content.decode()
    assert pipeline.get(RECORD).status_code == 401
    event = AuditEvent.objects.get(action="token.revoked")
    assert (event.actor_kind, event.actor_label) == ("user", "owner")


def test_someone_else_sees_no_button_and_a_direct_post_is_refused_with_403(client, lead, pipeline):
    client.force_login(lead)
    assert ">Revoke</a>" not in client.get(reverse("workflow-list")).content.decode()
    refused = client.post(revoke_url(pipeline))
    assert refused.status_code == 403
    assert "only the owner of address-updates, Morgan Hale, revokes its service accounts" in refused.content.decode()
    assert client.get(revoke_url(pipeline)).status_code == 403
    assert ServiceAccount.objects.get(pk=pipeline.account.pk).revoked_at is None
    assert pipeline.get(RECORD).status_code == 200
    assert not AuditEvent.objects.filter(action="token.revoked").exists()


def test_a_workflow_one_may_not_see_hides_its_accounts(client, pipeline):
    client.force_login(UserFactory(username="stranger"))
    assert client.post(revoke_url(pipeline)).status_code == 404
    assert ServiceAccount.objects.get(pk=pipeline.account.pk).revoked_at is None


def test_revoking_twice_from_the_page_says_when_it_was_revoked(client, owner, pipeline):
    client.force_login(owner)
    client.post(revoke_url(pipeline))
    again = client.post(revoke_url(pipeline))
    assert again.status_code == 409
    assert "service account address-updates/nightly was already revoked at " in again.content.decode()
