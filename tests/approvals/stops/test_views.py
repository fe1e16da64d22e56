import re

import pytest
from django.core.management import CommandError, call_command
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse
from guardian.shortcuts import assign_perm

from approvals.applying.services import Outcome, proposals_apply
from approvals.models import ProposalStatus, Stage, StopScope, StopSwitch, Workflow
from approvals.stops.context_processors import stop_switch
from approvals.stops.services import stop_engage
from audit.models import AuditEvent
from audit.services import Actor
from tests.helpers.factories import BatchFactory, GroupFactory, ProposalFactory, UserFactory, WorkflowFactory


@pytest.fixture
def ops(db):  # type: ignore[no-untyped-def]
    user = UserFactory(username="ops", password="ops")
    user.groups.add(GroupFactory(name="ops-managers"))
    return user


@pytest.fixture
def approver(db):  # type: ignore[no-untyped-def]
    """A support lead who approves one workflow (and may stop it), and no other."""
    user = UserFactory(username="lead", password="lead")
    workflow = WorkflowFactory(slug="address-updates")
    group = GroupFactory(name="support-leads")
    user.groups.add(group)
    assign_perm("approvals.review_workflow", group, workflow)
    return user


def test_ops_managers_see_the_stop_control_and_people_without_the_right_do_not(client, ops):
    UserFactory(username="agent", password="agent")
    client.login(username="ops", password="ops")
    html = client.get(reverse("workflow-list")).content.decode()
    assert ">Stop</button>" in html
    client.login(username="agent", password="agent")
    html = client.get(reverse("workflow-list")).content.decode()
    assert ">Stop</button>" not in html
    assert client.get(reverse("stop-new")).status_code == 403


def test_stopping_everything_needs_a_reason_and_a_confirmation(client, ops):
    client.login(username="ops", password="ops")
    form = client.get(reverse("stop-new"), {"next": "/workflows/"}).content.decode()
    assert "Everything" in form and "This workflow" in form and "This batch" in form
    refused = client.post(reverse("stop-new"), {"scope": "global", "reason": "incident 42", "next": "/workflows/"})
    assert refused.status_code == 422
    assert "Confirm that you mean to stop writes" in refused.content.decode()
    assert not StopSwitch.objects.exists()
    response = client.post(
        reverse("stop-new"),
        {"scope": "global", "reason": "incident 42", "confirm": "on", "next": "/workflows/"},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == "/workflows/"
    html = response.content.decode()
    assert 'class="banner stop-banner"' in html
    assert "everything" in html and "engaged by <strong>ops</strong>" in html and "incident 42" in html
    assert ">Release</button>" in html
    event = AuditEvent.objects.get(action="stop.engaged")
    assert (event.actor_label, event.reason) == ("ops", "incident 42")


def test_the_banner_is_on_every_page_for_everyone_signed_in(client, ops):
    UserFactory(username="agent", password="agent")
    client.login(username="ops", password="ops")
    client.post(reverse("stop-new"), {"scope": "global", "reason": "incident 42", "confirm": "on"})
    client.login(username="agent", password="agent")
    html = client.get(reverse("workflow-list")).content.decode()
    assert "incident 42" in html
    assert ">Release</button>" not in html


def test_an_approver_stops_their_own_workflow_and_batch_only(client, approver):
    client.login(username="lead", password="lead")
    own = Workflow.objects.get(slug="address-updates")
    other = WorkflowFactory(slug="refund-notes")
    form = client.get(reverse("stop-new"), {"workflow": own.slug}).content.decode()
    assert "Everything" not in form
    assert 'value="refund-notes"' not in form
    refused = client.post(reverse("stop-new"), {"scope": "global", "reason": "x" * 5, "confirm": "on"})
    assert refused.status_code == 422
    assert "Choose what to stop." in refused.content.decode()  # everything is not among the choices offered
    assert "Select a valid choice" not in refused.content.decode()
    refused = client.post(
        reverse("stop-new"), {"scope": "workflow", "workflow": other.slug, "reason": "nope", "confirm": "on"}
    )
    assert refused.status_code == 422
    assert "Choose one of the workflows listed." in refused.content.decode()
    assert "Choose the workflow to stop." not in refused.content.decode()  # one mistake, one message
    assert not StopSwitch.objects.exists()
    other_batch = BatchFactory(workflow=other)
    refused = client.post(
        reverse("stop-new"), {"scope": "batch", "batch": other_batch.pk, "reason": "nope", "confirm": "on"}
    )
    assert refused.status_code == 403
    assert "you may not stop workflow refund-notes" in refused.content.decode()
    own_batch = BatchFactory(workflow=own)
    response = client.post(
        reverse("stop-new"), {"scope": "batch", "batch": own_batch.pk, "reason": "bad run", "confirm": "on"}
    )
    assert response.status_code == 302
    switch = StopSwitch.objects.get()
    assert (switch.scope, switch.batch_id, switch.engaged_by_user) == ("batch", own_batch.pk, approver)


def test_the_stop_form_opens_on_the_batch_it_came_from_and_ignores_a_batch_number_that_cannot_be(client, ops):
    batch = BatchFactory()
    client.login(username="ops", password="ops")
    opened = client.get(reverse("stop-new"), {"batch": str(batch.pk)}).content.decode()
    assert re.search(r'value="batch"[^>]* checked', opened)
    assert f'name="batch" value="{batch.pk}"' in opened
    huge = client.get(reverse("stop-new"), {"batch": "9" * 30})
    assert huge.status_code == 200
    assert re.search(r'value="global"[^>]* checked', huge.content.decode())


def test_release_shows_what_will_apply_and_is_audited(client, ops):
    client.login(username="ops", password="ops")
    workflow = WorkflowFactory(slug="address-updates")
    client.post(
        reverse("stop-new"), {"scope": "workflow", "workflow": "address-updates", "reason": "check", "confirm": "on"}
    )
    switch = StopSwitch.objects.get()
    page = client.get(reverse("stop-release", args=[switch.pk]))
    assert "<strong>Workflow address-updates</strong>," in page.content.decode()
    assert "0 approved proposals in this scope will be applied" in page.content.decode()
    response = client.post(reverse("stop-release", args=[switch.pk]), {"note": "fixed", "next": "/workflows/"})
    assert response.status_code == 302
    switch.refresh_from_db()
    assert switch.released_by == ops
    assert AuditEvent.objects.get(action="stop.released").workflow_slug == workflow.slug
    assert "stop-banner" not in client.get(reverse("workflow-list")).content.decode()


def test_an_approver_cannot_release_a_global_stop(client, ops, approver):
    client.login(username="ops", password="ops")
    client.post(reverse("stop-new"), {"scope": "global", "reason": "incident", "confirm": "on"})
    switch = StopSwitch.objects.get()
    client.login(username="lead", password="lead")
    assert ">Release</button>" not in client.get(reverse("workflow-list")).content.decode()
    response = client.post(reverse("stop-release", args=[switch.pk]))
    assert response.status_code == 403
    assert "Only an ops manager may release the stop switch for everything." in response.content.decode()
    switch.refresh_from_db()
    assert switch.released_at is None
    assert not AuditEvent.objects.filter(action="stop.released").exists()


def test_stop_and_release_from_the_command_line(db, capsys):
    workflow = WorkflowFactory(slug="address-updates")
    UserFactory(username="ops")
    call_command("stop", "--workflow", "address-updates", "--reason", "pager alert 7")
    assert "Stopped workflow address-updates (switch" in capsys.readouterr().out
    switch = StopSwitch.objects.get()
    assert (switch.workflow, switch.reason) == (workflow, "pager alert 7")
    assert switch.engaged_by_label.startswith("cli:")
    with pytest.raises(CommandError, match="already engaged"):
        call_command("stop", "--workflow", "address-updates", "--reason", "again")
    with pytest.raises(CommandError, match="--user"):
        call_command("release", "--workflow", "address-updates", "--user", "nobody")
    call_command("release", "--workflow", "address-updates", "--user", "ops")
    assert "Released workflow address-updates." in capsys.readouterr().out
    switch.refresh_from_db()
    assert switch.released_by is not None and switch.released_by.username == "ops"
    with pytest.raises(CommandError, match="no stop switch is engaged for global"):
        call_command("release", "--all", "--user", "ops")
    with pytest.raises(CommandError, match="no workflow 'nope'"):
        call_command("stop", "--workflow", "nope", "--reason", "x")
    with pytest.raises(CommandError, match="reason is required"):
        call_command("stop", "--all", "--reason", " ")


def _render_chrome(user):  # type: ignore[no-untyped-def]
    request = RequestFactory().get("/workflows/")
    request.user = user
    context = {"stop_switch": stop_switch(request)["stop_switch"], "request": request}
    return render_to_string("approvals/stop_control.html", context) + render_to_string(
        "approvals/stop_banner.html", context
    )


@pytest.mark.parametrize("engaged", [1, 4])
def test_the_stop_control_and_banner_cost_a_fixed_number_of_queries(
    db, ops, approver, engaged, django_assert_num_queries
):
    own = Workflow.objects.get(slug="address-updates")
    batches = [BatchFactory(workflow=own) for _ in range(engaged - 1)]
    stop_engage(scope=StopScope.GLOBAL, reason="incident", actor=Actor.system("test"))
    for batch in batches:
        stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad run", actor=Actor.system("test"))
    # the engaged switches; membership of ops-managers; with a stop of a workflow engaged, what the
    # viewer may see (their groups; the workflows in their sight)
    seeing = 2 if batches else 0
    with django_assert_num_queries(2 + seeing):
        html = _render_chrome(ops)
    assert html.count('class="stop-line"') == engaged
    assert html.count(">Release</button>") == engaged
    with django_assert_num_queries(3 + seeing):  # and the workflows this approver may stop
        html = _render_chrome(approver)
    assert html.count('class="stop-line"') == engaged
    assert ">Stop</button>" in html


def test_on_a_batch_page_the_stop_control_offers_to_halt_that_batch(client, approver):
    batch = BatchFactory(workflow=Workflow.objects.get(slug="address-updates"))
    client.login(username="lead", password="lead")
    html = client.get(reverse("review-batch", args=[batch.pk])).content.decode()
    assert f'<input type="hidden" name="batch" value="{batch.pk}">' in html
    form = client.get(reverse("stop-new"), {"batch": batch.pk}).content.decode()
    assert 'value="batch" id="id_scope_1" required checked' in form
    assert f'name="batch" value="{batch.pk}"' in form


def test_a_batch_still_writing_has_a_banner_with_a_stop_for_that_batch(client, ops):
    workflow = WorkflowFactory(slug="address-updates")
    running = BatchFactory(workflow=workflow, name="Nightly sweep")
    ProposalFactory.create_batch(3, workflow=workflow, batch=running, status=ProposalStatus.APPROVED)
    ProposalFactory.create_batch(2, workflow=workflow, batch=running, status=ProposalStatus.APPLIED)
    finished = BatchFactory(workflow=workflow, name="Finished sweep")
    ProposalFactory(workflow=workflow, batch=finished, status=ProposalStatus.APPLIED)
    client.login(username="ops", password="ops")
    html = client.get(reverse("workflow-list")).content.decode()
    assert html.count('class="banner progress-banner"') == 1
    assert f"batch {running.pk} (Nightly sweep, address-updates)" in html
    assert "2 written, 3 approved still to apply." in html
    assert "Finished sweep" not in html
    form = client.get(reverse("stop-new"), {"batch": running.pk, "next": "/workflows/"}).content.decode()
    assert 'value="batch" id="id_scope_2" required checked' in form
    assert f'name="batch" value="{running.pk}"' in form
    response = client.post(
        reverse("stop-new"),
        {
            "scope": "batch",
            "batch": running.pk,
            "reason": "addresses look wrong",
            "confirm": "on",
            "next": "/workflows/",
        },
        follow=True,
    )
    html = response.content.decode()
    assert "progress-banner" not in html  # the stop banner names it now
    assert f"batch {running.pk} (Nightly sweep, address-updates)" in html and "addresses look wrong" in html
    stopped = (
        f"Stopped batch {running.pk} (Nightly sweep, address-updates). No write in it is applied until it is released."
    )
    assert stopped in html


def test_the_writing_banner_shows_only_batches_this_person_may_stop(client, approver):
    UserFactory(username="agent", password="agent")
    own = Workflow.objects.get(slug="address-updates")
    other = WorkflowFactory(slug="refund-notes")
    own_batch, other_batch = BatchFactory(workflow=own, name="Own run"), BatchFactory(workflow=other, name="Other run")
    ProposalFactory(workflow=own, batch=own_batch, status=ProposalStatus.APPROVED)
    ProposalFactory(workflow=other, batch=other_batch, status=ProposalStatus.APPROVED)
    client.login(username="lead", password="lead")
    html = client.get(reverse("workflow-list")).content.decode()
    assert "Own run" in html and "Other run" not in html
    client.login(username="agent", password="agent")
    assert "progress-banner" not in client.get(reverse("workflow-list")).content.decode()


def test_the_writing_banner_costs_one_query_and_hides_under_a_stop(db, ops, approver, django_assert_num_queries):
    workflow = Workflow.objects.get(slug="address-updates")
    for _ in range(3):
        ProposalFactory(workflow=workflow, batch=BatchFactory(workflow=workflow), status=ProposalStatus.APPROVED)
    # the engaged switches; membership of ops-managers; batches writing; what the viewer may see (2)
    with django_assert_num_queries(5):
        html = _render_chrome(ops)
    assert html.count('class="banner progress-banner"') == 3
    with django_assert_num_queries(6):  # and the workflows this approver may stop
        assert _render_chrome(approver).count('class="banner progress-banner"') == 3
    stop_engage(scope=StopScope.WORKFLOW, workflow=workflow, reason="check", actor=Actor.system("test"))
    html = _render_chrome(ops)
    assert "progress-banner" not in html and html.count('class="stop-line"') == 1


def test_a_batch_held_by_the_canary_cap_says_so_and_one_that_cannot_write_has_no_banner(
    db, ops, django_assert_num_queries
):
    canary = WorkflowFactory(slug="tag-fill", stage=Stage.CANARY, canary_daily_limit=1)
    capped = BatchFactory(workflow=canary, name="Canary run")
    proposals = ProposalFactory.create_batch(2, workflow=canary, batch=capped, status=ProposalStatus.APPROVED)
    outcomes = [result.outcome for result in proposals_apply(proposal_ids=[p.pk for p in proposals], worker="w/1")]
    assert outcomes == [Outcome.APPLIED, Outcome.WAITING]
    shadow = WorkflowFactory(slug="sentiment", stage=Stage.SHADOW)
    ProposalFactory(
        workflow=shadow, batch=BatchFactory(workflow=shadow, name="Shadow run"), status=ProposalStatus.APPROVED
    )
    with django_assert_num_queries(6):  # and today's canary writes
        html = _render_chrome(ops)
    assert html.count('class="banner progress-banner"') == 1
    assert "<strong>Held:</strong>" in html and "<strong>Writing:</strong>" not in html
    assert f"batch {capped.pk} (Canary run, tag-fill)" in html
    assert "1 written, 1 approved still to apply: canary cap reached, resumes at 00:00 UTC." in html
    assert "Shadow run" not in html
