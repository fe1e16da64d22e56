"""Releasing a stop needs the release right of its scope: the group on override duty for the workflow
now, or its owner; ops managers any. Engaging stays with the workflow's approvers."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from approvals.models import OverrideBlock, OverrideScope, StopScope, StopSwitch
from approvals.overrides.services import override_grant
from approvals.stops.services import stop_engage
from audit.models import AuditEvent
from audit.services import Actor
from tests.helpers.factories import UserFactory
from tests.helpers.overrides import DAY, NIGHT, REASON, on_call_workflow


@pytest.fixture
def on_call(db):  # type: ignore[no-untyped-def]
    return on_call_workflow()


def _engage_as_lead(client, on_call):  # type: ignore[no-untyped-def]
    client.force_login(on_call.lead)
    response = client.post(
        reverse("stop-new"),
        {"scope": "workflow", "workflow": on_call.workflow.slug, "reason": "addresses look wrong", "confirm": "on"},
    )
    assert response.status_code == 302
    return StopSwitch.objects.get(released_at__isnull=True)


def test_at_night_a_lead_engages_a_stop_but_only_the_group_on_duty_releases_it(client, on_call):
    with time_machine.travel(NIGHT, tick=False):
        switch = _engage_as_lead(client, on_call)
        banner = client.get(reverse("workflow-list")).content.decode()
        assert "addresses look wrong" in banner
        assert ">Release</button>" not in banner
        page = client.get(reverse("stop-release", args=[switch.pk])).content.decode()
        refused = client.post(reverse("stop-release", args=[switch.pk]), {"note": "fixed"})

        client.force_login(on_call.ops)
        assert ">Release</button>" in client.get(reverse("workflow-list")).content.decode()
        released = client.post(reverse("stop-release", args=[switch.pk]), {"note": "fixed"})

    reason = (
        "you may not release the stop switch for workflow address-updates: only the owner of workflow "
        "address-updates or the group on override duty for it (ops-managers, on override duty now) may"
    )
    assert reason.capitalize() in page and ">Release</button>" not in page.split("<main")[1]
    assert refused.status_code == 403
    assert reason.capitalize() in refused.content.decode()
    assert released.status_code == 302
    switch.refresh_from_db()
    assert switch.released_by == on_call.ops
    assert AuditEvent.objects.filter(action="stop.released").count() == 1


def test_by_day_the_leads_are_on_duty_and_release_their_workflows_stop(client, on_call):
    with time_machine.travel(DAY, tick=False):
        switch = _engage_as_lead(client, on_call)
        assert ">Release</button>" in client.get(reverse("workflow-list")).content.decode()
        response = client.post(reverse("stop-release", args=[switch.pk]))
    assert response.status_code == 302
    switch.refresh_from_db()
    assert switch.released_by == on_call.lead


def test_the_workflow_owner_releases_its_stops_at_any_hour_but_cannot_engage_one(client, on_call):
    batch = on_call.batch(name="Nightly sweep")
    switch = stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad prompt in the run", actor=Actor.system("t"))
    client.force_login(on_call.owner)
    with time_machine.travel(NIGHT, tick=False):
        banner = client.get(reverse("workflow-list")).content.decode()
        assert client.get(reverse("stop-new")).status_code == 403
        response = client.post(reverse("stop-release", args=[switch.pk]))
    assert ">Release</button>" in banner and ">Stop</button>" not in banner
    assert response.status_code == 302
    switch.refresh_from_db()
    assert switch.released_by == on_call.owner


def test_someone_on_duty_for_another_workflow_may_not_release_this_ones_stop(client, on_call):
    other_ops = UserFactory(username="night-owl")
    other_ops.groups.add(on_call.leads)  # a lead: engages, but is off duty at night
    switch = stop_engage(
        scope=StopScope.WORKFLOW, workflow=on_call.workflow, reason="held for checks", actor=Actor.system("t")
    )
    client.force_login(other_ops)
    with time_machine.travel(NIGHT, tick=False):
        response = client.post(reverse("stop-release", args=[switch.pk]))
    assert response.status_code == 403
    switch.refresh_from_db()
    assert switch.released_at is None


def _three_stops(on_call):  # type: ignore[no-untyped-def]
    stop_engage(
        scope=StopScope.WORKFLOW, workflow=on_call.workflow, reason="audit of addresses", actor=Actor.system("t")
    )
    for name in ("Nightly sweep", "Weekend sweep"):
        stop_engage(
            scope=StopScope.BATCH, batch=on_call.batch(name=name), reason=f"{name} wrong", actor=Actor.system("t")
        )


def test_several_stops_fold_into_a_count_with_one_line_each(client, on_call):
    _three_stops(on_call)
    client.force_login(on_call.lead)
    html = client.get(reverse("workflow-list")).content.decode()
    assert html.count('<details class="banner stop-banner stop-many"') == 1
    assert "<strong>3 stop switches engaged</strong>" in html
    assert html.count('<p class="stop-line">') == 3
    assert "Nightly sweep wrong" in html and "Weekend sweep wrong" in html and "audit of addresses" in html


def test_one_stop_is_a_single_line_and_no_toggle(client, on_call):
    stop_engage(
        scope=StopScope.WORKFLOW, workflow=on_call.workflow, reason="audit of addresses", actor=Actor.system("t")
    )
    client.force_login(on_call.lead)
    html = client.get(reverse("workflow-list")).content.decode()
    assert "stop-many" not in html
    assert html.count('<p class="stop-line">') == 1


def test_while_an_override_lets_writes_pass_the_banner_says_so_and_counts_down(client, on_call):
    on_call.ops.first_name, on_call.ops.last_name = "Sam", "Okafor"
    on_call.ops.save()
    batch = on_call.batch(name="Nightly sweep")
    stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad prompt in the run", actor=Actor.system("t"))
    with time_machine.travel(NIGHT, tick=False):
        override_grant(
            user=on_call.ops,
            block=OverrideBlock.STOP_SWITCH,
            scope=OverrideScope.BATCH,
            reason=REASON,
            minutes=42,
            workflow=on_call.workflow,
            batch=batch,
        )
        client.force_login(on_call.lead)
        overridden = client.get(reverse("workflow-list")).content.decode()
    with time_machine.travel(NIGHT + timedelta(minutes=43), tick=False):
        expired = client.get(reverse("workflow-list")).content.decode()
    assert "<strong>Stop overridden:</strong>" in overridden
    assert "overridden by <strong>Sam Okafor</strong>" in overridden
    assert "for 42 more minutes: writes pass</span>" in overridden
    assert 'data-countdown-seconds="2520"' in overridden
    assert "No write in it is applied" not in overridden
    assert "js/countdown.js" in overridden
    assert "Stop overridden" not in expired and "No write in it is applied" in expired


def test_under_the_global_stop_no_override_is_said_to_let_writes_pass(client, on_call):
    batch = on_call.batch(name="Nightly sweep")
    stop_engage(scope=StopScope.BATCH, batch=batch, reason="bad prompt in the run", actor=Actor.system("t"))
    with time_machine.travel(NIGHT, tick=False):
        override_grant(
            user=on_call.ops,
            block=OverrideBlock.STOP_SWITCH,
            scope=OverrideScope.BATCH,
            reason=REASON,
            minutes=42,
            workflow=on_call.workflow,
            batch=batch,
        )
        stop_engage(scope=StopScope.GLOBAL, reason="incident 42", actor=Actor.system("t"))
        client.force_login(on_call.ops)
        html = client.get(reverse("workflow-list")).content.decode()
    assert "Stop overridden" not in html and "writes pass" not in html
    assert html.count('<p class="stop-line">') == 2
