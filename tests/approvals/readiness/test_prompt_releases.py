"""A new prompt version of a live workflow is a release: its first proposals are written at most the
canary cap a day until the workflow's owner promotes it; every promotion is on the trail."""

import importlib
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from approvals.applying.selectors import proposal_apply_wait_reason, proposals_ready_to_apply
from approvals.applying.services import Outcome, proposals_apply
from approvals.jobs import APPLY
from approvals.models import PromptRelease, Proposal, ProposalStatus, Stage
from approvals.readiness.prompts import prompt_releases_of, prompt_version_promote
from approvals.review.holds import proposal_hold
from audit.models import AuditEvent
from core.errors import InvalidTransition, NotAllowed, NotFound
from records.models import Change
from tests.helpers.factories import ProposalFactory, UserFactory
from tests.helpers.pipeline import Pipeline, make_pipeline, make_workflow
from tests.helpers.releases import HELD, approve, submit


@pytest.fixture
def pipeline(db) -> Pipeline:  # type: ignore[no-untyped-def]
    owner = UserFactory(username="owner", first_name="Olive", last_name="Owner")
    return make_pipeline(make_workflow(slug="address-updates", owner=owner, canary_daily_limit=2))


def test_intake_notes_each_versions_first_sight_once(pipeline):
    first = submit(pipeline, 3, "address-update@8")
    release = PromptRelease.objects.get(workflow=pipeline.workflow, prompt_version="address-update@8")
    assert (release.promoted_at, release.promoted_by) == (None, None)
    assert release.first_seen_at == first[0].created_at
    submit(pipeline, 2, "address-update@8")
    submit(pipeline, 1, "address-update@9")
    versions = PromptRelease.objects.filter(workflow=pipeline.workflow).values_list("prompt_version", "first_seen_at")
    assert dict(versions)["address-update@8"] == release.first_seen_at  # the first sight stays
    assert set(dict(versions)) == {"address-update@8", "address-update@9"}


def test_a_batch_notes_its_versions_in_one_statement(pipeline):
    with CaptureQueriesContext(connection) as captured:
        submit(pipeline, 6, "address-update@8")
    statements = [q["sql"] for q in captured.captured_queries if PromptRelease._meta.db_table in q["sql"]]
    assert len(statements) == 1 and statements[0].startswith("INSERT")


def test_a_version_first_seen_before_the_workflow_is_live_is_released_with_it(pipeline):
    pipeline.workflow.stage = Stage.CANARY
    pipeline.workflow.save(update_fields=["stage"])
    submit(pipeline, 1, "address-update@8")
    release = PromptRelease.objects.get(prompt_version="address-update@8")
    assert release.promoted_at is not None and release.promoted_by is None
    pipeline.workflow.stage = Stage.LIVE
    pipeline.workflow.save(update_fields=["stage"])
    ids = approve(submit(pipeline, 3, "address-update@8"))
    assert [r.outcome for r in proposals_apply(proposal_ids=ids, worker="w")] == [Outcome.APPLIED] * 3


def test_a_new_version_is_held_to_the_cap_and_the_others_are_not(pipeline, lead):
    old = ProposalFactory(workflow=pipeline.workflow, status=ProposalStatus.APPROVED, prompt_version="address-update@7")
    ids = approve(submit(pipeline, 4))
    results = proposals_apply(proposal_ids=[*ids, old.pk], worker="w")
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 2 + [Outcome.WAITING] * 2 + [Outcome.APPLIED]
    assert results[2].detail == HELD
    assert Change.objects.filter(prompt_version="address-update@8").count() == 2
    waiting = Proposal.objects.select_related("workflow").get(pk=ids[3])
    assert waiting.status == ProposalStatus.APPROVED
    assert proposal_apply_wait_reason(proposal=waiting) == HELD
    hold = proposal_hold(user=lead, proposal=waiting)
    assert hold is not None and hold.reason == HELD and hold.block == "canary_cap"
    ready = proposals_ready_to_apply(updated_before=timezone.now())
    assert not set(ready) & {ids[2], ids[3]}  # the sweeper leaves what the cap holds


def test_a_paused_or_canary_workflow_is_not_held_by_its_versions(pipeline):
    ids = approve(submit(pipeline, 3))
    pipeline.workflow.stage = Stage.CANARY
    pipeline.workflow.canary_daily_limit = 50
    pipeline.workflow.save(update_fields=["stage", "canary_daily_limit"])
    assert [r.outcome for r in proposals_apply(proposal_ids=ids, worker="w")] == [Outcome.APPLIED] * 3


def test_the_owner_promotes_it_the_trail_says_so_and_the_waiting_ones_are_queued(
    pipeline, queued, django_capture_on_commit_callbacks
):
    ids = approve(submit(pipeline, 4))
    proposals_apply(proposal_ids=ids, worker="w")
    owner = pipeline.workflow.owner
    with django_capture_on_commit_callbacks(execute=True):
        release = prompt_version_promote(workflow=pipeline.workflow, prompt_version="address-update@8", user=owner)
    assert release.promoted_by == owner and release.promoted_at is not None
    event = AuditEvent.objects.get(action="prompt.promoted")
    assert (event.actor_label, event.workflow_slug, event.prompt_version) == (
        "owner",
        "address-updates",
        "address-update@8",
    )
    assert event.details["written_today"] == 2 and event.details["approved_waiting"] == 2
    assert [item.args for item in queued if item.name == APPLY] == [[ids[2:]]]
    assert [r.outcome for r in proposals_apply(proposal_ids=ids[2:], worker="w")] == [Outcome.APPLIED] * 2


def test_only_the_owner_promotes_once_a_version_the_workflow_has_seen(pipeline, lead):
    submit(pipeline, 1)
    workflow = pipeline.workflow
    with pytest.raises(NotAllowed, match="only the owner of address-updates promotes its prompt versions"):
        prompt_version_promote(workflow=workflow, prompt_version="address-update@8", user=lead)
    with pytest.raises(NotFound, match="has no proposal from prompt version address-update@99"):
        prompt_version_promote(workflow=workflow, prompt_version="address-update@99", user=workflow.owner)
    prompt_version_promote(workflow=workflow, prompt_version="address-update@8", user=workflow.owner)
    with pytest.raises(InvalidTransition, match="already promoted by Olive Owner"):
        prompt_version_promote(workflow=workflow, prompt_version="address-update@8", user=workflow.owner)
    assert AuditEvent.objects.filter(action="prompt.promoted").count() == 1


def test_the_versions_in_use_before_releases_were_noted_are_released(pipeline):
    ProposalFactory(workflow=pipeline.workflow, prompt_version="address-update@5")
    ProposalFactory(workflow=pipeline.workflow, prompt_version="address-update@5")
    ProposalFactory(workflow=pipeline.workflow, prompt_version="address-update@6")
    migration = importlib.import_module("approvals.migrations.0018_prompt_releases")
    migration.release_versions_in_use(apps, None)
    releases = PromptRelease.objects.filter(workflow=pipeline.workflow)
    assert {r.prompt_version for r in releases} == {"address-update@5", "address-update@6"}
    assert all(r.promoted_at is not None and r.promoted_by is None for r in releases)


def test_the_command_promotes_and_says_what_is_wrong(pipeline, lead):
    submit(pipeline, 1)

    def run(*args: str) -> str:
        out = StringIO()
        call_command("promote_prompt", *args, stdout=out)
        return out.getvalue()

    base = ["--workflow", "address-updates", "--prompt-version", "address-update@8"]
    for args, message in (
        (["--workflow", "nope", "--prompt-version", "v1", "--user", "owner"], "--workflow: no workflow 'nope'"),
        ([*base, "--user", "nobody"], "--user: no active user 'nobody'"),
        ([*base[:3], "v404", "--user", "owner"], "has no proposal from prompt version v404"),
        ([*base, "--user", "lead"], "only the owner of address-updates promotes"),
    ):
        with pytest.raises(CommandError, match=message):
            run(*args)
    assert "Promoted prompt version address-update@8 of address-updates" in run(*base, "--user", "owner")
    with pytest.raises(CommandError, match="already promoted"):
        run(*base, "--user", "owner")
    assert AuditEvent.objects.filter(action="prompt.promoted", actor_label="owner").count() == 1


def test_the_promote_button_posts_and_comes_back(pipeline, lead, client):
    submit(pipeline, 1)
    assign_perm("approvals.view_workflow", lead, pipeline.workflow)
    url = reverse("prompt-promote", args=["address-updates"])
    client.force_login(lead)
    response = client.post(url, {"prompt_version": "address-update@8", "next": "/workflows/"})
    assert response.status_code == 302 and response["Location"] == "/workflows/"
    assert PromptRelease.objects.get().promoted_at is None
    client.force_login(pipeline.workflow.owner)
    assert client.get(url).status_code == 405
    response = client.post(url, {"prompt_version": "address-update@8", "next": "/workflows/"}, follow=True)
    assert "Prompt version address-update@8 of address-updates promoted" in response.content.decode()
    assert PromptRelease.objects.get().promoted_by == pipeline.workflow.owner
    client.force_login(UserFactory())
    assert client.post(url, {"prompt_version": "address-update@8"}).status_code == 404


def test_the_section_lists_each_version_and_offers_the_owner_promote(pipeline, lead, django_assert_num_queries):
    submit(pipeline, 2, "address-update@8")
    submit(pipeline, 1, "address-update@9")
    prompt_version_promote(workflow=pipeline.workflow, prompt_version="address-update@9", user=pipeline.workflow.owner)
    with django_assert_num_queries(2):
        releases = prompt_releases_of(workflow=pipeline.workflow, user=pipeline.workflow.owner)
    assert [(r.prompt_version, r.proposals, r.held) for r in releases.rows] == [
        ("address-update@9", 1, False),
        ("address-update@8", 2, True),
    ]
    request = RequestFactory().get("/workflows/address-updates/readiness/")
    request.user = pipeline.workflow.owner
    html = render_to_string("readiness/prompt_releases.html", {"prompt_releases": releases}, request=request)
    assert html.count(">Promote</button>") == 1
    assert "Held to the canary cap of 2 a day" in html and "Promoted by Olive Owner" in html
    assert "1 prompt version not promoted yet." in html
    seen_by_lead = prompt_releases_of(workflow=pipeline.workflow, user=lead)
    request.user = lead
    html = render_to_string("readiness/prompt_releases.html", {"prompt_releases": seen_by_lead}, request=request)
    assert ">Promote</button>" not in html


def test_the_blocked_page_names_the_version_held_at_its_cap(pipeline, client):
    ids = approve(submit(pipeline, 3))
    proposals_apply(proposal_ids=ids, worker="w")
    client.force_login(pipeline.workflow.owner)
    html = client.get(reverse("blocked")).content.decode()
    assert "prompt version <code>address-update@8</code>" in html
    assert f"2 of 2: {HELD}" in html
