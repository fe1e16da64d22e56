from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals.models import RetentionChange, RetentionChangeStatus, TrainingCopyRequest, TrainingCopyStatus
from approvals.retention.services import retention_change_propose
from audit.models import Artifact, ArtifactKind, AuditEvent
from audit.retention import artifacts_purge_expired
from tests.helpers.factories import ArtifactFactory, RetentionRuleFactory, UserFactory, WorkflowFactory
from tests.helpers.pages import error_messages


@pytest.fixture
def owner(db):
    return UserFactory(username="owner", password="owner", first_name="Morgan", last_name="Hale")


@pytest.fixture
def security(db):
    return UserFactory(username="security", password="security", first_name="Sasha", last_name="Iyer")


@pytest.fixture
def lead(db):
    return UserFactory(username="lead", password="lead")


@pytest.fixture
def workflow(owner, security, lead):
    workflow = WorkflowFactory(slug="refund-notes", name="Refund notes", owner=owner, retention_co_owner=security)
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


def _cell(html, kind="prompt", bucket="live"):
    return html.split(f'data-kind="{kind}" data-bucket="{bucket}"')[1].split("</td>")[0]


def _waiting(html):
    return html.split('class="waiting')[1].split("</table>")[0]


def test_the_page_names_both_owners_and_the_co_owner_sees_the_workflow(client, security, workflow, prompt_rule):
    client.force_login(security)
    response = client.get(_url(workflow))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Two owners keep these rules: <strong>Morgan Hale</strong>" in html
    assert "and <strong>Sasha Iyer</strong>" in html
    assert "No second owner is named" not in html
    assert "Propose</button>" in _cell(html)


def test_an_owner_proposes_with_htmx_and_nothing_changes_yet(client, owner, workflow, prompt_rule):
    artifact = ArtifactFactory.create(rule=prompt_rule)
    client.force_login(owner)
    response = client.post(_url(workflow), {"rule": prompt_rule.pk, "window": "30s"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="retention"')
    assert (
        "Proposed: the prompt/live rule to keep artifacts for 30s. It keeps 2m until Sasha Iyer countersigns." in html
    )
    prompt_rule.refresh_from_db()
    artifact.refresh_from_db()
    assert prompt_rule.window == timedelta(minutes=2)
    assert artifact.expires_at == artifact.created_at + timedelta(minutes=2)
    cell = _cell(html)
    assert "<strong>2m</strong> in effect" in cell
    assert "30s proposed</a> by Morgan Hale, waiting for Sasha Iyer" in cell
    assert "<form" not in cell
    waiting = _waiting(html)
    assert "prompt/live" in waiting and "<strong>30s</strong>" in waiting
    assert "Morgan Hale, " in waiting
    assert ">Withdraw</button>" in waiting
    assert "Countersign" not in waiting
    assert not AuditEvent.objects.filter(action="retention.changed").exists()
    assert AuditEvent.objects.get(action="retention.change_proposed").actor_label == "owner"


def test_the_other_owner_countersigns_on_the_page(client, owner, security, workflow, prompt_rule):
    artifact = ArtifactFactory.create(rule=prompt_rule)
    client.force_login(owner)
    client.post(_url(workflow), {"rule": prompt_rule.pk, "window": "30s"})
    change = RetentionChange.objects.get()

    client.force_login(security)
    waiting = _waiting(client.get(_url(workflow)).content.decode())
    assert ">Countersign</button>" in waiting and ">Reject</button>" in waiting
    response = client.post(
        _url(workflow), {"retention_change": change.pk, "decision": "countersign"}, headers={"HX-Request": "true"}
    )

    html = response.content.decode()
    assert "Countersigned: the prompt/live rule now keeps artifacts for 30s (proposed by Morgan Hale)." in html
    assert 'class="waiting' not in html
    assert 'value="30s"' in _cell(html)
    prompt_rule.refresh_from_db()
    artifact.refresh_from_db()
    assert prompt_rule.window == timedelta(seconds=30)
    assert artifact.expires_at == artifact.created_at + timedelta(seconds=30)
    event = AuditEvent.objects.get(action="retention.changed")
    assert event.old_value == {"window": "2m", "owner": "owner"}
    assert event.new_value == {"window": "30s", "owner": "owner"}
    assert (event.details["proposed_by"], event.details["countersigned_by"]) == ("owner", "security")


def test_the_proposer_is_told_they_cannot_countersign(client, owner, workflow, prompt_rule):
    client.force_login(owner)
    client.post(_url(workflow), {"rule": prompt_rule.pk, "window": "30s"})
    change = RetentionChange.objects.get()
    response = client.post(_url(workflow), {"retention_change": change.pk, "decision": "countersign"})
    assert response.status_code == 403
    refusal = "you proposed this change: the other owner of the retention rules countersigns it"
    assert error_messages(response) == [refusal]
    prompt_rule.refresh_from_db()
    assert prompt_rule.window == timedelta(minutes=2)


def test_a_decision_the_page_does_not_offer_is_refused(client, owner, security, workflow, prompt_rule):
    client.force_login(owner)
    client.post(_url(workflow), {"rule": prompt_rule.pk, "window": "30s"})
    change = RetentionChange.objects.get()
    client.force_login(security)
    response = client.post(_url(workflow), {"retention_change": change.pk, "decision": "approve"})
    assert response.status_code == 422
    assert "the form said neither countersign nor withdraw; reload the page and try again" in response.content.decode()
    missing = client.post(_url(workflow), {"retention_change": change.pk + 1, "decision": "countersign"})
    assert missing.status_code == 404
    assert "no such retention change in this workflow" in missing.content.decode()
    change.refresh_from_db()
    assert change.status == RetentionChangeStatus.PENDING


def test_the_proposer_withdraws_and_the_other_owner_rejects(client, owner, security, workflow, prompt_rule):
    client.force_login(owner)
    client.post(_url(workflow), {"rule": prompt_rule.pk, "window": "30s"})
    first = RetentionChange.objects.get()
    response = client.post(_url(workflow), {"retention_change": first.pk, "decision": "withdraw"}, follow=True)
    assert "Withdrawn: the change to the prompt/live rule. It still keeps 2m." in response.content.decode()
    client.post(_url(workflow), {"rule": prompt_rule.pk, "window": "1h"})
    second = RetentionChange.objects.get(status=RetentionChangeStatus.PENDING)

    client.force_login(security)
    response = client.post(_url(workflow), {"retention_change": second.pk, "decision": "withdraw"}, follow=True)

    assert "Rejected: the change to the prompt/live rule. It still keeps 2m." in response.content.decode()
    prompt_rule.refresh_from_db()
    assert prompt_rule.window == timedelta(minutes=2)
    assert AuditEvent.objects.get(action="retention.change_rejected").actor_label == "security"


def test_without_a_second_owner_the_page_says_no_change_can_take_effect(client, owner, workflow, prompt_rule):
    workflow.retention_co_owner = None
    workflow.save(update_fields=["retention_co_owner"])
    client.force_login(owner)
    html = client.get(_url(workflow)).content.decode()
    assert "and a second owner, not yet named" in html
    assert "No second owner is named, so no change to these rules can take effect." in html
    response = client.post(_url(workflow), {"rule": prompt_rule.pk, "window": "1h"}, follow=True)
    html = response.content.decode()
    assert "until a second owner to be named (retention_co_owner in the workflow file) countersigns" in html
    assert "waiting for a second owner to be named" in _cell(html)
    prompt_rule.refresh_from_db()
    assert prompt_rule.window == timedelta(minutes=2)


def test_without_javascript_a_proposal_redirects_back(client, owner, workflow, prompt_rule):
    client.force_login(owner)
    response = client.post(_url(workflow), {"rule": prompt_rule.pk, "window": "1h"}, follow=True)
    assert response.redirect_chain == [(_url(workflow), 302)]
    assert "Proposed: the prompt/live rule to keep artifacts for 1h." in response.content.decode()
    assert RetentionChange.objects.get().window_after == timedelta(hours=1)


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
    assert not RetentionChange.objects.exists()


def test_a_non_owner_proposal_is_refused(client, lead, workflow, prompt_rule):
    refusal = "only the owners of refund-notes&#x27;s retention rules (Morgan Hale and Sasha Iyer) may change them"
    client.force_login(lead)
    response = client.post(_url(workflow), {"rule": prompt_rule.pk, "window": "0d"})
    assert response.status_code == 403
    assert refusal in response.content.decode()
    htmx = client.post(_url(workflow), {"rule": prompt_rule.pk, "window": "0d"}, headers={"HX-Request": "true"})
    assert htmx.status_code == 200
    assert 'role="alert"' in htmx.content.decode()
    assert refusal in htmx.content.decode()
    assert not RetentionChange.objects.exists()


def test_a_non_owner_sees_what_waits_but_no_buttons(client, owner, lead, workflow, prompt_rule):
    client.force_login(owner)
    client.post(_url(workflow), {"rule": prompt_rule.pk, "window": "1h"})
    change = RetentionChange.objects.get()
    client.force_login(lead)
    waiting = _waiting(client.get(_url(workflow)).content.decode())
    assert "only its owners decide" in waiting
    assert "<button" not in waiting
    response = client.post(_url(workflow), {"retention_change": change.pk, "decision": "countersign"})
    assert response.status_code == 403
    prompt_rule.refresh_from_db()
    assert prompt_rule.window == timedelta(minutes=2)


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


def test_the_page_runs_a_fixed_number_of_queries(
    client, owner, security, workflow, prompt_rule, django_assert_num_queries
):
    client.force_login(owner)
    past = timezone.now() - timedelta(minutes=10)
    rules = iter((kind, bucket) for kind in ArtifactKind.values for bucket in ("training", "analytics"))

    def fill(count):
        for _ in range(count):
            ArtifactFactory.create(rule=prompt_rule)
            ArtifactFactory.create(rule=prompt_rule, created_at=past)
        artifacts_purge_expired()
        ArtifactFactory.create(rule=prompt_rule, created_at=past)
        for proposer in (owner, security):
            kind, bucket = next(rules)
            rule = RetentionRuleFactory(workflow=workflow, kind=kind, bucket=bucket)
            retention_change_propose(rule=rule, user=proposer, window=timedelta(hours=1))

    fill(1)
    client.get(_url(workflow))
    # 10 for the page, 2 for what the viewer may see (their groups; the workflows in their sight), and 5
    # for the stop, override, store and audit-chain banners every page shows
    with django_assert_num_queries(10 + 2 + 5):
        client.get(_url(workflow))
    fill(2)
    with django_assert_num_queries(10 + 2 + 5):
        assert _waiting(client.get(_url(workflow)).content.decode()).count("<tr id=") == 4


def test_the_workflow_list_links_to_the_retention_page(client, owner, workflow):
    client.force_login(owner)
    html = client.get(reverse("workflow-list")).content.decode()
    assert f'href="{_url(workflow)}"' in html
