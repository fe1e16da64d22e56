from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals.applying.services import Outcome, proposal_apply
from approvals.models import Override, OverrideReview, ProposalStatus, Stage, StopScope
from approvals.overrides.services import override_grant
from approvals.stops.services import stop_engage
from audit.models import AuditEvent
from audit.services import Actor
from records.models import Change
from tests.helpers.factories import UserFactory
from tests.helpers.overrides import DAY, NIGHT, REASON, on_call_workflow
from tests.helpers.pages import error_after, error_messages

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def halted(on_call):
    batch = on_call.batch(name="address sweep")
    for _ in range(3):
        on_call.proposal(batch=batch)
    stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad prompt in the bulk job", actor=Actor.user(on_call.lead))
    return batch


def as_user(client, user):
    client.force_login(user)
    return client


def grant_form(batch, **fields):
    return {"block": "stop_switch", "scope": "batch", "target": str(batch.pk), **fields}


def test_blocked_is_in_the_navigation(client, on_call):
    html = as_user(client, on_call.lead).get(reverse("workflow-list")).content.decode()
    assert f'<a href="{reverse("blocked")}"' in html
    assert ">Blocked</a>" in html


def test_at_night_ops_sees_the_override_button_and_lead_does_not(client, on_call, halted):
    with time_machine.travel(NIGHT, tick=False):
        as_ops = as_user(client, on_call.ops).get(reverse("blocked")).content.decode()
        as_lead = as_user(client, on_call.lead).get(reverse("blocked")).content.decode()
    assert f"Batch {halted.pk} (address sweep, address-updates)" in as_ops
    assert '<button type="submit" class="danger">Override</button>' in as_ops
    assert "Override</button>" not in as_lead
    assert "ops-managers on duty" in as_lead
    assert "Mon 30 Nov 08:00" in as_lead  # the leads are back on Monday morning


def test_by_day_the_lead_sees_the_button_and_ops_does_not(client, on_call, halted):
    with time_machine.travel(DAY, tick=False):
        as_lead = as_user(client, on_call.lead).get(reverse("blocked")).content.decode()
        as_ops = as_user(client, on_call.ops).get(reverse("blocked")).content.decode()
    assert "Override</button>" in as_lead
    assert "Override</button>" not in as_ops


def test_the_global_stop_shows_no_override_button(client, on_call):
    stop_engage(scope=StopScope.GLOBAL, reason="incident 42", actor=Actor.user(on_call.lead))
    with time_machine.travel(NIGHT, tick=False):
        html = as_user(client, on_call.ops).get(reverse("blocked")).content.decode()
    assert "Released only, never overridden" in html
    assert "Override</button>" not in html


def test_ops_grants_an_override_with_htmx_and_sees_the_banner(client, on_call, halted):
    client = as_user(client, on_call.ops)
    with time_machine.travel(NIGHT, tick=False):
        form = client.get(reverse("override-grant"), grant_form(halted)).content.decode()
        assert 'max="240"' in form and 'value="60"' in form
        assert '<input type="hidden" name="block" value="stop_switch">' in form
        response = client.post(reverse("override-grant"), grant_form(halted, reason=REASON, minutes="45"), **HTMX)
        assert response.status_code == 200
        assert response["HX-Redirect"] == reverse("blocked")
        page = client.get(reverse("blocked")).content.decode()
    override = Override.objects.get()
    assert (override.scope, override.batch, override.expires_at) == ("batch", halted, NIGHT + timedelta(minutes=45))
    assert "Override active:" in page and REASON in page
    assert 'data-countdown-seconds="2700"' in page
    assert "Overridden until 22:45 UTC by ops" in page
    assert "Revoke</button>" in page


def test_a_short_reason_comes_back_on_the_form_naming_the_field(client, on_call, halted):
    client = as_user(client, on_call.ops)
    with time_machine.travel(NIGHT, tick=False):
        partial = client.post(reverse("override-grant"), grant_form(halted, reason="because", minutes="30"), **HTMX)
        page = client.post(reverse("override-grant"), grant_form(halted, reason="", minutes="999"))
    assert partial.status_code == 200
    html = partial.content.decode()
    assert "<html" not in html
    # Once, next to the reason box, without the code's field name; nothing on top of the form.
    assert error_messages(html) == ["write at least 10 characters saying why this block should be lifted"]
    assert error_after(html, "override-reason") == error_messages(html)[0]
    assert "reason:" not in html
    assert ">because</textarea>" in html
    assert page.status_code == 422
    assert error_after(page, "override-minutes").startswith("at most 240 minutes for workflow address-updates")
    assert not Override.objects.exists()


def test_the_lead_posting_at_night_is_refused_plainly(client, on_call, halted):
    with time_machine.travel(NIGHT, tick=False):
        response = as_user(client, on_call.lead).post(reverse("override-grant"), grant_form(halted, reason=REASON))
    assert response.status_code == 403
    assert "ops-managers is on override duty until 2026-11-30 08:00 UTC; you are not in that group" in (
        response.content.decode()
    )
    assert not Override.objects.exists()
    assert not AuditEvent.objects.filter(action="override.granted").exists()


def test_a_target_the_user_may_not_see_is_not_found(client, on_call, halted):
    stranger = UserFactory(username="stranger")
    response = as_user(client, stranger).get(reverse("override-grant"), grant_form(halted))
    assert response.status_code == 404


def test_revoking_from_the_banner_brings_the_block_back(client, on_call, halted):
    with time_machine.travel(NIGHT, tick=False):
        override = override_grant(user=on_call.ops, block="stop_switch", scope="batch", batch=halted, reason=REASON)
        response = as_user(client, on_call.ops).post(reverse("override-revoke", args=[override.pk]), follow=True)
        page = client.get(reverse("blocked")).content.decode()
    assert "revoked: the block is back" in response.content.decode()
    assert AuditEvent.objects.filter(action="override.revoked").count() == 1
    override.refresh_from_db()
    assert (override.revoked_at, override.revoked_by) == (NIGHT, on_call.ops)
    assert "Override active:" not in page
    assert '<button type="submit" class="danger">Override</button>' in page


def make_blocks(on_call, size):
    """`size` of each kind of block: stopped batches, conflicts, waiting proposals, canary rows."""
    for n in range(size):
        batch = on_call.batch(name=f"sweep {n}")
        on_call.proposal(batch=batch)
        stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad prompt", actor=Actor.user(on_call.lead))
        on_call.proposal(status=ProposalStatus.CONFLICT)
        on_call.proposal(status=ProposalStatus.PENDING)
        canary = on_call_workflow(slug=f"canary-{size}-{n}", stage=Stage.CANARY, canary_daily_limit=1)
        canary.proposal()
        Change.objects.create(
            record_type="customer", record_id="CUS-1", action="update", before={}, after={}, version_before=1,
            version_after=2, workflow_slug=canary.workflow.slug, applied_at=NIGHT - timedelta(minutes=5),
            applied_by="worker",
        )  # fmt: skip
        with time_machine.travel(NIGHT, tick=False):
            override_grant(user=on_call.ops, block="stop_switch", scope="batch", batch=batch, reason=REASON)


def blocked_queries(client, user):
    with time_machine.travel(NIGHT, tick=False), CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("blocked"))
    assert response.status_code == 200
    return len(queries), response.content.decode()


def test_the_blocked_page_runs_a_fixed_number_of_queries(client, on_call):
    client = as_user(client, on_call.ops)
    make_blocks(on_call, 1)
    client.get(reverse("blocked"))  # warm the process-wide caches, as in a running server
    small, html = blocked_queries(client, on_call.ops)
    assert html.count("Overridden until") == 1
    make_blocks(on_call, 4)
    large, html = blocked_queries(client, on_call.ops)
    assert html.count("Overridden until") == 5
    assert html.count('<tr id="canary-') == 5
    assert html.count("Override</button>") == 5 + 5 + 5  # canary rows, conflicts, waiting proposals
    assert small == large


def test_the_morning_review_lists_what_was_done_and_the_lead_acknowledges(client, on_call, halted):
    proposal = halted.proposals.first()
    with time_machine.travel(NIGHT, tick=False):
        override = override_grant(user=on_call.ops, block="stop_switch", scope="batch", batch=halted, reason=REASON)
        assert proposal_apply(proposal_id=proposal.pk, worker="apply-worker").outcome == Outcome.APPLIED
    client = as_user(client, on_call.lead)
    with time_machine.travel(NIGHT + timedelta(hours=10), tick=False):
        page = client.get(reverse("override-review")).content.decode()
        assert REASON in page
        assert f"1 × write applied under a stop: customer {proposal.record_id} (proposal {proposal.pk})" in page
        assert "expired Fri 23:00 UTC" in page
        row = client.post(reverse("override-acknowledge", args=[override.pk]), **HTMX)
    assert row.status_code == 200
    html = row.content.decode()
    assert html.strip().startswith(f'<tr id="override-{override.pk}">')
    assert "Acknowledged by lead" in html
    override.refresh_from_db()
    assert override.review == OverrideReview.ACKNOWLEDGED
    page = client.get(reverse("override-review")).content.decode()
    assert "Nothing to review" in page and "the last one was acknowledged by lead" in page


def test_flagging_needs_a_note_and_says_so_in_the_row(client, on_call, halted):
    with time_machine.travel(NIGHT, tick=False):
        override = override_grant(user=on_call.ops, block="stop_switch", scope="batch", batch=halted, reason=REASON)
    client = as_user(client, on_call.lead)
    refused = client.post(reverse("override-flag", args=[override.pk]), {"note": "hm"}, **HTMX).content.decode()
    assert "write at least 10 characters saying what is wrong" in refused
    assert "note:" not in refused
    override.refresh_from_db()
    assert override.review == OverrideReview.PENDING
    flagged = client.post(
        reverse("override-flag", args=[override.pk]), {"note": "Batch was not fixed yet"}, **HTMX
    ).content.decode()
    assert "Flagged by lead: Batch was not fixed yet" in flagged
    page = client.get(reverse("override-review")).content.decode()
    assert "Nothing to review" in page
    flagged_section = page.split("Flagged this week")[1]
    assert REASON in flagged_section and "Flagged by lead: Batch was not fixed yet" in flagged_section


def test_ops_cannot_review_and_sees_no_buttons(client, on_call, halted):
    with time_machine.travel(DAY, tick=False):
        override = override_grant(user=on_call.lead, block="stop_switch", scope="batch", batch=halted, reason=REASON)
    client = as_user(client, on_call.ops)
    assert "Acknowledge</button>" not in client.get(reverse("override-review")).content.decode()
    response = client.post(reverse("override-acknowledge", args=[override.pk]), follow=True)
    assert "only the approver group of address-updates reviews its overrides" in response.content.decode()
    override.refresh_from_db()
    assert (override.review, override.reviewed_by) == (OverrideReview.PENDING, None)


def test_the_morning_review_runs_a_fixed_number_of_queries(client, on_call, django_assert_num_queries):
    client = as_user(client, on_call.lead)
    make_blocks(on_call, 1)
    client.get(reverse("override-review"))  # warm the process-wide caches, as in a running server
    with CaptureQueriesContext(connection) as small:
        client.get(reverse("override-review"))
    make_blocks(on_call, 4)
    with django_assert_num_queries(len(small)):
        page = client.get(reverse("override-review")).content.decode()
    assert page.count("Acknowledge</button>") == 5


def schedule_form(**fields):
    data = {
        "day_group": "",
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "day_from": "08:00",
        "day_to": "18:00",
        "timezone": "Europe/London",
        "after_hours_group": "",
        "max_minutes": "240",
    }
    data.update(fields)
    return data


def test_only_the_owner_edits_the_schedule_and_every_edit_is_audited(client, on_call):
    url = reverse("workflow-schedule", args=["address-updates"])
    assert as_user(client, on_call.lead).get(url).status_code == 403
    assert as_user(client, on_call.lead).post(url, schedule_form()).status_code == 403
    client = as_user(client, on_call.owner)
    assert client.get(url).status_code == 200
    form = schedule_form(
        day_group=on_call.leads.pk, after_hours_group=on_call.ops_managers.pk, day_from="07:30", max_minutes="90"
    )
    response = client.post(url, form)
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="workflow.changed")
    assert event.actor_label == "owner"
    assert event.old_value == {"override_day_from": "08:00", "override_max_minutes": 240}
    assert event.new_value == {"override_day_from": "07:30", "override_max_minutes": 90}
    client.post(url, form)
    assert AuditEvent.objects.filter(action="workflow.changed").count() == 1  # nothing changed the second time


def test_a_bad_schedule_is_refused_naming_each_field(client, on_call):
    url = reverse("workflow-schedule", args=["address-updates"])
    response = as_user(client, on_call.owner).post(
        url, schedule_form(day_group=on_call.leads.pk, day_from="18:00", day_to="08:00", timezone="Mars/Olympus")
    )
    assert response.status_code == 422
    html = response.content.decode()
    # Each next to its own field, once, and none repeated on top with the code's field names.
    assert error_after(html, "id_day_to") == "must be after the start of the day"
    assert error_after(html, "id_after_hours_group") == "is required with a day group: someone must be on duty at night"
    assert error_after(html, "id_timezone") == "unknown time zone 'Mars/Olympus'"
    assert len(error_messages(html)) == 3
    assert "day_to:" not in html and "timezone:" not in html
    assert not AuditEvent.objects.filter(action="workflow.changed").exists()


def test_the_workflow_list_shows_who_is_on_duty_until_when(client, on_call, django_assert_num_queries):
    # All at night: a session signed in then lasts 12 hours, not until the tests run.
    with time_machine.travel(NIGHT, tick=False):
        as_owner = as_user(client, on_call.owner).get(reverse("workflow-list")).content.decode()
        as_lead = as_user(client, on_call.lead).get(reverse("workflow-list")).content.decode()
        assert "ops-managers until Mon 30 Nov 08:00 UTC" in as_lead
        assert "Edit schedule" in as_owner and "Edit schedule" not in as_lead
        with CaptureQueriesContext(connection) as small:
            client.get(reverse("workflow-list"))
        for n in range(4):
            on_call_workflow(slug=f"more-{n}")
        with django_assert_num_queries(len(small)):
            html = client.get(reverse("workflow-list")).content.decode()
    assert html.count("ops-managers until") == 5
