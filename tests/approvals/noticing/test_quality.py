"""The quality page of a workflow: per prompt version, the approve, reject, conflict and undo rates and
decision times per day over the last 30 days, drawn as SVG charts, and why reviewers rejected."""

import re

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from approvals.models import ShadowVerdict
from approvals.noticing.quality import reason_key, workflow_quality
from tests.helpers.factories import ProposalFactory, UserFactory, WorkflowFactory
from tests.helpers.quality import day_at, decided
from tests.helpers.seeing import let_see


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _story(workflow, lead):  # type: ignore[no-untyped-def]
    """v1 yesterday: two applied (10 and 20 minutes), one rejected (30), one conflict (60); three days
    ago: one undone (4 minutes) and one approved by the policy. v2 yesterday: one rejected, later in the day."""
    yesterday, earlier = day_at(1, 9), day_at(3, 9)
    decided(workflow, version="v1", status="applied", at=yesterday, waited_minutes=10, by=lead)
    decided(workflow, version="v1", status="applied", at=yesterday, waited_minutes=20, by=lead)
    decided(workflow, version="v1", status="rejected", at=yesterday, waited_minutes=30, by=lead, note="Wrong house.")
    decided(workflow, version="v1", status="conflict", at=yesterday, waited_minutes=60, by=lead)
    decided(workflow, version="v1", status="reverted", at=earlier, waited_minutes=4, by=lead)
    decided(workflow, version="v1", status="approved", at=earlier)
    decided(workflow, version="v2", status="rejected", at=day_at(1, 15), waited_minutes=2, by=lead, note="Not asked")


def test_rates_and_decision_times_per_version_and_day(workflow, lead):  # type: ignore[no-untyped-def]
    _story(workflow, lead)
    # Not counted: decided before the window, still pending, another workflow's.
    decided(workflow, version="v1", status="rejected", at=day_at(31), waited_minutes=5, by=lead, note="old")
    ProposalFactory(workflow=workflow, prompt_version="v1")
    decided(WorkflowFactory(), version="v1", status="rejected", at=day_at(1), by=lead, note="elsewhere")

    quality = workflow_quality(workflow=workflow)

    assert [v.prompt_version for v in quality.versions] == ["v2", "v1"]  # the one decided last first
    v1 = quality.versions[1]
    assert len(v1.days) == 30 and v1.days[-1].day == day_at(0).date()
    yesterday = v1.days[-2].tally
    assert (yesterday.decided, yesterday.approve_rate, yesterday.reject_rate) == (4, 75.0, 25.0)
    assert (yesterday.conflict_rate, yesterday.undo_rate, yesterday.decision_minutes) == (25.0, 0.0, 30.0)
    three_days_ago = v1.days[-4].tally
    assert (three_days_ago.decided, three_days_ago.approve_rate, three_days_ago.undo_rate) == (2, 100.0, 50.0)
    assert three_days_ago.decision_minutes == 4.0  # the policy's approval is no decision time
    assert v1.days[-3].tally.decided == 0 and v1.days[-3].tally.approve_rate is None
    assert (v1.total.decided, v1.total.reject_rate, v1.total.by_people) == (6, 16.7, 5)
    assert v1.total.decision_minutes == round((10 + 20 + 30 + 60 + 4) / 5, 1)
    v2 = quality.versions[0]
    assert (v2.total.decided, v2.total.reject_rate, v2.total.decision_minutes) == (1, 100.0, 2.0)


def test_rejection_reasons_are_grouped_with_their_count_and_latest_example(workflow, lead):  # type: ignore[no-untyped-def]
    for hour, note in (
        (8, "Wrong address."),
        (9, "wrong   address"),
        (11, " WRONG Address!! "),
        (10, "Customer moved"),
    ):
        decided(workflow, version="v1", status="rejected", at=day_at(2, hour), by=lead, note=note)
    decided(workflow, version="v1", status="rejected", at=day_at(1), by=lead, note="Customer moved")
    decided(workflow, version="v2", status="rejected", at=day_at(1), by=lead, note="wrong address")

    reasons = {v.prompt_version: v.reasons for v in workflow_quality(workflow=workflow).versions}

    assert [(g.example, g.count) for g in reasons["v1"]] == [("WRONG Address!!", 3), ("Customer moved", 2)]
    assert reasons["v1"][0].latest == day_at(2, 11)
    assert [(g.example, g.count) for g in reasons["v2"]] == [("wrong address", 1)]
    assert reason_key("  Not   the right one?! ") == "not the right one"


def test_only_the_ten_largest_reason_groups_are_shown(workflow, lead):  # type: ignore[no-untyped-def]
    for n in range(12):
        for _ in range(1 + (n == 0)):
            decided(workflow, version="v1", status="rejected", at=day_at(1), by=lead, note=f"Reason number {n}")

    version = workflow_quality(workflow=workflow).versions[0]

    assert len(version.reasons) == 10 and version.reason_groups == 12
    assert (version.reasons[0].example, version.reasons[0].count) == ("Reason number 0", 2)


def test_the_page_draws_each_version_s_charts_with_their_numbers(client, workflow, lead):  # type: ignore[no-untyped-def]
    _story(workflow, lead)
    client.force_login(lead)

    response = client.get(reverse("workflow-quality", args=[workflow.slug]))

    assert response.status_code == 200
    html = response.content.decode()
    assert html.count("<svg") == 4  # two charts for each of the two versions
    assert '<title id="rates-2-title">Decisions per day, prompt version v1</title>' in html
    assert "Mean decision time per day, prompt version v1" in html
    yesterday = day_at(1).date()
    assert f"<title>Rejected, {yesterday.day} {yesterday:%b}: 25 %</title>" in html
    assert f"<title>Decision time, {yesterday.day} {yesterday:%b}: 30 min</title>" in html
    text = _text(html)
    assert f"{yesterday:%a} {yesterday.day} {yesterday:%b} 4 75.0% 25.0% 25.0% 0.0% 30.0 min" in text  # the table
    assert "Decided 6 Approved 83.3% Rejected 16.7% Conflict 16.7% Undone 16.7% Mean decision time 24.8 min" in text
    assert "1 Wrong house." in text and "1 Not asked" in text
    assert 'class="series series-approve"' in html and '<path d="M' in html
    # Above them, the versions side by side, each linking to its own section.
    assert "Prompt versions side by side" in text
    assert "v2 1 0.0% 100.0% 0.0% 0.0% 2.0 min —" in text
    assert "v1 6 83.3% 16.7% 16.7% 16.7% 24.8 min —" in text
    assert '<a href="#version-2"><code>v1</code></a>' in html


def test_the_rollback_drills_proposals_are_no_prompt_versions_work(workflow, lead):  # type: ignore[no-untyped-def]
    decided(workflow, version="v1", status="applied", at=day_at(1), waited_minutes=3, by=lead)
    decided(workflow, version="rollback-drill@4", status="reverted", at=day_at(1), by=lead)
    decided(workflow, version="rollback-drill@4", status="rejected", at=day_at(1), by=lead, note="drill")

    assert [v.prompt_version for v in workflow_quality(workflow=workflow).versions] == ["v1"]


def test_a_decision_a_hair_before_its_submission_counts_no_negative_time(workflow, lead):  # type: ignore[no-untyped-def]
    decided(workflow, version="v1", status="applied", at=day_at(1), waited_minutes=-0.1, by=lead)

    total = workflow_quality(workflow=workflow).versions[0].total
    assert total.decision_minutes == 0.0 and total.decision_time_label == "under a minute"


def test_decision_times_read_in_minutes_and_under_one_as_under_a_minute(client, workflow, lead):  # type: ignore[no-untyped-def]
    decided(workflow, version="v1", status="applied", at=day_at(1, 9), waited_minutes=0.25, by=lead)
    decided(workflow, version="v2", status="applied", at=day_at(1, 10), waited_minutes=90, by=lead)
    client.force_login(lead)

    text = _text(client.get(reverse("workflow-quality", args=[workflow.slug])).content.decode())

    assert "v1 1 100.0% 0.0% 0.0% 0.0% under a minute —" in text
    assert "v2 1 100.0% 0.0% 0.0% 0.0% 90.0 min —" in text


def test_the_page_runs_the_same_queries_whatever_the_data(client, workflow, lead, django_assert_num_queries):  # type: ignore[no-untyped-def]
    client.force_login(lead)
    url = reverse("workflow-quality", args=[workflow.slug])
    decided(workflow, version="v1", status="rejected", at=day_at(1), by=lead, note="one")
    client.get(url)  # whatever a first request reads once (the session, cached content types)
    with CaptureQueriesContext(connection) as small:
        client.get(url)
    _story(workflow, lead)
    for n in range(5):
        decided(workflow, version=f"v{n + 3}", status="rejected", at=day_at(n), by=lead, note=f"reason {n}")
    shadowed = ProposalFactory(workflow=workflow, prompt_version="v9", status="shadowed")
    ShadowVerdict.objects.create(proposal=shadowed, user=lead, verdict="would_approve")
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(url)
    assert response.content.decode().count("<svg") == 2 * 7
    with CaptureQueriesContext(connection) as aggregates:
        workflow_quality(workflow=workflow)
    # By version and day, by version and reason, by version and verdict (on PostgreSQL, beside the
    # transaction's savepoint and its working memory).
    assert len([q for q in aggregates.captured_queries if "approvals_" in q["sql"]]) == 3
    assert len(aggregates.captured_queries) <= 3 + 3  # SAVEPOINT, SET LOCAL, RELEASE


def test_a_person_who_may_not_see_the_workflow_gets_404(client, workflow):  # type: ignore[no-untyped-def]
    url = reverse("workflow-quality", args=[workflow.slug])
    assert client.get(url).status_code == 302
    client.force_login(UserFactory(username="stranger", is_staff=True))
    assert client.get(url).status_code == 404
    client.force_login(let_see(UserFactory(username="viewer"), workflow))
    assert client.get(url).status_code == 200


def test_the_workflows_page_and_the_readiness_page_link_to_it(client, workflow, lead):  # type: ignore[no-untyped-def]
    client.force_login(lead)
    url = reverse("workflow-quality", args=[workflow.slug])
    assert f'href="{url}"' in client.get(reverse("workflow-list")).content.decode()
    assert f'href="{url}"' in client.get(reverse("workflow-readiness", args=[workflow.slug])).content.decode()


def test_a_workflow_without_decisions_says_so(client, workflow, lead):  # type: ignore[no-untyped-def]
    client.force_login(lead)
    response = client.get(reverse("workflow-quality", args=[workflow.slug]))
    assert "No proposal of this workflow was decided in the last 30 days" in _text(response.content.decode())
