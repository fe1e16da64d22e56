"""Each role lands on a page with work for it when it logs in; a `next=` address still wins."""

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from approvals.workflows.landing import landing_page
from tests.helpers.factories import UserFactory
from tests.helpers.overrides import DAY, NIGHT, OnCall
from tests.helpers.seeing import make_auditor


def _lands(user, at) -> str:  # type: ignore[no-untyped-def]
    """Where `user` lands when they log in at `at`, as the browser is sent there."""
    client = Client()
    with time_machine.travel(at, tick=False):
        response = client.post(reverse("login"), {"username": user.username, "password": user.username})
        assert response.status_code == 302, response.content
        landing = client.get(response["Location"])
    assert landing.status_code == 302
    return str(landing["Location"])


@pytest.mark.parametrize(("at", "page"), [(NIGHT, "blocked"), (DAY, "blocked")], ids=["after-hours", "by-day"])
def test_ops_without_review_rights_land_on_blocked(on_call: OnCall, at, page):
    assert _lands(on_call.ops, at) == reverse(page)


def test_ops_who_also_review_land_on_blocked_after_hours_and_on_review_by_day(on_call: OnCall):
    on_call.ops.groups.add(on_call.leads)
    assert _lands(on_call.ops, NIGHT) == reverse("blocked")
    assert _lands(on_call.ops, DAY) == reverse("review-queue")


@pytest.mark.parametrize("at", [NIGHT, DAY], ids=["after-hours", "by-day"])
def test_a_lead_lands_on_review(on_call: OnCall, at):
    assert _lands(on_call.lead, at) == reverse("review-queue")


def test_an_agent_lands_on_records(on_call: OnCall):
    assert _lands(on_call.agent, DAY) == reverse("record-search")


def test_the_workflow_owner_lands_on_workflows(on_call: OnCall):
    assert _lands(on_call.owner, DAY) == reverse("workflow-list")


def test_an_auditor_lands_on_the_trail(db):
    auditor = make_auditor(UserFactory(username="auditor", password="auditor"))
    assert landing_page(user=auditor, at=DAY) == "trail"


def test_next_still_wins(on_call: OnCall):
    client = Client()
    response = client.post(
        reverse("login"), {"username": "ops", "password": "ops", "next": reverse("trail")}, follow=False
    )
    assert response["Location"] == reverse("trail")


def test_a_wrong_password_keeps_the_username_and_says_so_once(on_call: OnCall):
    response = Client().post(reverse("login"), {"username": "ops", "password": "wrong"})
    html = response.content.decode()
    assert 'value="ops"' in html
    assert html.count("Your username and password didn't match") == 1
