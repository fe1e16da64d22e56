from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals.models import TrainingCopyRequest, TrainingCopyStatus
from audit.models import Artifact, AuditEvent
from audit.retention import artifacts_purge_expired
from tests.helpers.factories import ArtifactFactory, RetentionRuleFactory, UserFactory, WorkflowFactory
from tests.helpers.pages import error_messages


@pytest.fixture
def owner(db):
    return UserFactory(username="owner", password="owner", first_name="Morgan", last_name="Hale")


@pytest.fixture
def lead(db):
    return UserFactory(username="lead", password="lead")


@pytest.fixture
def workflow(owner, lead):
    workflow = WorkflowFactory(slug="refund-notes", name="Refund notes", owner=owner)
    assign_perm("view_workflow", lead, workflow)
    return workflow


@pytest.fixture
def prompt_rule(workflow):
    return RetentionRuleFactory(workflow=workflow, kind="prompt", bucket="live", window=timedelta(minutes=2))


def _url(workflow):
    return reverse("workflow-retention", args=[workflow.slug])


def test_the_page_shows_each_rule_with_what_is_stored_under_it(client, owner, workflow, prompt_rule):
    ArtifactFactory.create(rule=prompt_rule, content="x" * 1000)
    ArtifactFactory.create(rule=prompt_rule, content="y" * 1000)
    client.force_login(owner)
    response = client.get(_url(workflow))
    assert response.status_code == 200
    html = response.content.decode()
    cell = html.split('data-kind="prompt" data-bucket="live"')[1].split("</td>")[0]
    assert 'value="2m"' in cell
    assert "kept by Morgan Hale" in cell
    assert "2 stored · 2.0\xa0KB" in cell
    assert "next purge" in cell
    no_rule = html.split('data-kind="attachment" data-bucket="live"')[1].split("</td>")[0]
    assert "no rule: not stored" in no_rule
    assert "Nothing has been purged yet." in html


def test_others_see_the_rules_read_only(client, lead, workflow, prompt_rule):
    client.force_login(lead)
    html = client.get(_url(workflow)).content.decode()
    cell = html.split('data-kind="prompt" data-bucket="live"')[1].split("</td>")[0]
    assert "<strong>2m</strong>" in cell
    assert "<form" not in cell


def test_someone_who_may_not_see_the_workflow_gets_a_404(client, workflow):
    client.force_login(UserFactory(username="stranger"))
    assert client.get(_url(workflow)).status_code == 404


def test_the_owner_edits_a_rule_with_htmx(client, owner, workflow, prompt_rule):
    artifact = ArtifactFactory.create(rule=prompt_rule)
    client.force_login(owner)
    response = client.post(_url(workflow), {"rule": prompt_rule.pk, "window": "30s"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="retention"')
    assert "The prompt/live rule now keeps artifacts for 30s." in html
    prompt_rule.refresh_from_db()
    artifact.refresh_from_db()
    assert prompt_rule.window == timedelta(seconds=30)
    assert artifact.expires_at == artifact.created_at + timedelta(seconds=30)
    event = AuditEvent.objects.get(action="retention.changed")
    assert event.old_value == {"window": "2m", "owner": "owner"}
    assert event.new_value == {"window": "30s", "owner": "owner"}


def test_without_javascript_an_edit_redirects_back(client, owner, workflow, prompt_rule):
    client.force_login(owner)
    response = client.post(_url(workflow), {"rule": prompt_rule.pk, "window": "1h"}, follow=True)
    assert response.redirect_chain == [(_url(workflow), 302)]
    assert "now keeps artifacts for 1h" in response.content.decode()
    prompt_rule.refresh_from_db()
    assert prompt_rule.window == timedelta(hours=1)


def test_a_bad_window_is_refused_naming_the_field(client, owner, workflow, prompt_rule):
    client.force_login(owner)
    response = client.post(_url(workflow), {"rule": prompt_rule.pk, "window": "forever"})
    assert response.status_code == 422
    # Once, in the cell of the rule that was sent, with what was typed there to correct.
    assert error_messages(response) == ["'forever' is not a window such as 30s, 15m, 12h or 7d"]
    cell = response.content.decode().split('data-kind="prompt" data-bucket="live"')[1].split("</td>")[0]
    assert error_messages(cell) == ["'forever' is not a window such as 30s, 15m, 12h or 7d"]
    assert 'value="forever"' in cell
    prompt_rule.refresh_from_db()
    assert prompt_rule.window == timedelta(minutes=2)
    assert not AuditEvent.objects.filter(action="retention.changed").exists()


def test_a_non_owner_edit_is_refused(client, lead, workflow, prompt_rule):
    client.force_login(lead)
    response = client.post(_url(workflow), {"rule": prompt_rule.pk, "window": "0d"})
    assert response.status_code == 403
    assert "only the rule&#x27;s owner, Morgan Hale, may change" in response.content.decode()
    prompt_rule.refresh_from_db()
    assert prompt_rule.window == timedelta(minutes=2)
    htmx = client.post(_url(workflow), {"rule": prompt_rule.pk, "window": "0d"}, headers={"HX-Request": "true"})
    assert htmx.status_code == 200
    assert 'role="alert"' in htmx.content.decode()
    assert "only the rule&#x27;s owner, Morgan Hale, may change" in htmx.content.decode()
    prompt_rule.refresh_from_db()
    assert prompt_rule.window == timedelta(minutes=2)
    assert not AuditEvent.objects.filter(action="retention.changed").exists()


def test_tombstones_appear_once_artifacts_are_purged(client, owner, workflow, prompt_rule):
    past = timezone.now() - timedelta(minutes=10)
    artifact = ArtifactFactory.create(rule=prompt_rule, created_at=past)
    client.force_login(owner)
    assert str(artifact.pk) in client.get(_url(workflow)).content.decode()
    artifacts_purge_expired()
    html = client.get(_url(workflow)).content.decode()
    assert f'data-artifact="{artifact.pk}"' not in html
    tombstones = html.split('class="tombstones"')[1]
    assert artifact.sha256[:12] in tombstones
    assert f"refund-notes prompt/live (#{prompt_rule.pk})" in tombstones


def test_a_training_copy_is_asked_for_and_approved_on_the_page(client, owner, lead, workflow):
    output = RetentionRuleFactory(workflow=workflow, kind="output", bucket="live", window=timedelta(days=7))
    RetentionRuleFactory(workflow=workflow, kind="output", bucket="training", window=timedelta(days=30))
    artifact = ArtifactFactory.create(rule=output)
    client.force_login(lead)
    html = client.get(_url(workflow)).content.decode()
    assert "Request training copy" in html
    client.post(_url(workflow), {"artifact": str(artifact.pk)})
    request = TrainingCopyRequest.objects.get(artifact_id=artifact.pk)
    html = client.get(_url(workflow)).content.decode()
    assert "waiting for Morgan Hale" in html
    assert "Approve" not in html
    assert "Request training copy" not in html
    assert "training copy asked for" in html

    client.force_login(owner)
    response = client.post(
        _url(workflow), {"training_request": request.pk, "decision": "approve"}, headers={"HX-Request": "true"}
    )
    assert "Training copy approved and made" in response.content.decode()
    request.refresh_from_db()
    assert request.status == TrainingCopyStatus.APPROVED
    assert Artifact.objects.filter(bucket="training", copied_from=artifact.pk).exists()


def test_the_page_runs_a_fixed_number_of_queries(client, owner, workflow, prompt_rule, django_assert_num_queries):
    client.force_login(owner)
    past = timezone.now() - timedelta(minutes=10)

    def fill(count):
        for _ in range(count):
            ArtifactFactory.create(rule=prompt_rule)
            ArtifactFactory.create(rule=prompt_rule, created_at=past)
        artifacts_purge_expired()
        ArtifactFactory.create(rule=prompt_rule, created_at=past)

    fill(1)
    client.get(_url(workflow))
    # 9 for the page, 2 for what the viewer may see (their groups; the workflows in their sight), and 5
    # for the stop, override, store and audit-chain banners every page shows
    with django_assert_num_queries(9 + 2 + 5):
        client.get(_url(workflow))
    fill(8)
    with django_assert_num_queries(9 + 2 + 5):
        client.get(_url(workflow))


def test_the_workflow_list_links_to_the_retention_page(client, owner, workflow):
    client.force_login(owner)
    html = client.get(reverse("workflow-list")).content.decode()
    assert f'href="{_url(workflow)}"' in html
