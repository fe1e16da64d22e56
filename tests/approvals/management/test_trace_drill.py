"""`manage.py trace_drill --workflow SLUG --user NAME`: start a drill and say where to answer it."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from approvals.models import TraceDrill
from audit.models import AuditEvent
from tests.helpers.trace_drills import applied_change


def run(*args: str) -> str:
    out = StringIO()
    call_command("trace_drill", *args, stdout=out)
    return out.getvalue()


def test_it_starts_a_drill_and_prints_the_complaint_the_page_and_the_time_limit(workflow, lead, second_lead):
    change = applied_change(workflow=workflow, approver=second_lead, at=timezone.now() - timedelta(days=20))

    printed = run("--workflow", "address-updates", "--user", "lead", "--site", "https://countersign.example.com/")

    drill = TraceDrill.objects.get()
    assert (drill.user, drill.change_id, drill.passed) == (lead, change.id, None)
    assert drill.started_by.startswith("cli:")
    assert printed.splitlines() == [
        f"Trace drill {drill.pk} for lead on address-updates",
        "Complaint: Customer CUS-10042 says their shipping address changed about 3 weeks ago.",
        f"Answer at: https://countersign.example.com/drills/trace/{drill.pk}/",
        "Time limit: 5 minutes, counted from now",
    ]
    assert AuditEvent.objects.get(action="trace_drill.started").details["user"] == "lead"


def test_without_a_site_it_prints_the_pages_path(workflow, lead, second_lead):
    applied_change(workflow=workflow, approver=second_lead, at=timezone.now() - timedelta(days=2))

    printed = run("--workflow", "address-updates", "--user", "lead")

    assert f"Answer at: /drills/trace/{TraceDrill.objects.get().pk}/\n" in printed


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--workflow", "no-such", "--user", "lead"), "--workflow: no workflow 'no-such'"),
        (("--workflow", "address-updates", "--user", "nobody"), "--user: no active user 'nobody'"),
        (("--workflow", "address-updates", "--user", "lead"), "address-updates has no applied change to trace yet"),
    ],
)
def test_what_it_refuses_it_names(workflow, lead, args, says):
    with pytest.raises(CommandError, match=says):
        run(*args)

    assert not TraceDrill.objects.exists()
