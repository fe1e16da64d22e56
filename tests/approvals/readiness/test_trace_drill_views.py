"""The trace drill's pages: start one, answer it, read its result; who sees and who answers."""

from datetime import timedelta

import pytest
from django.utils import timezone

from approvals.models import TraceDrill
from approvals.readiness.trace_drill import trace_drill_start
from audit.services import Actor
from tests.helpers.factories import UserFactory
from tests.helpers.trace_drills import applied_change, right_answers


@pytest.fixture
def change(workflow, second_lead):  # type: ignore[no-untyped-def]
    return applied_change(workflow=workflow, approver=second_lead, at=timezone.now() - timedelta(days=1))


@pytest.fixture
def drill(workflow, lead, change):  # type: ignore[no-untyped-def]
    return trace_drill_start(workflow=workflow, user=lead, started_by=Actor.user(lead))


def test_the_start_page_says_what_a_drill_asks_and_lists_recent_drills(client, workflow, lead, second_lead, change):
    for person in (lead, second_lead):
        trace_drill_start(workflow=workflow, user=person, started_by=Actor.user(person))
    client.force_login(lead)

    response = client.get(f"/workflows/{workflow.slug}/trace-drill/")

    page = response.content.decode()
    assert response.status_code == 200
    assert "right within\n  <strong>5 minutes</strong>" in page
    assert '<button type="submit" class="primary">Start trace drill</button>' in page
    assert page.count("open</td>") == 2 and "Sam Okafor" in page and "Dana Lee" in page


def test_the_start_page_runs_the_same_queries_whatever_the_number_of_drills(
    client, workflow, lead, change, django_assert_num_queries
):
    client.force_login(lead)
    trace_drill_start(workflow=workflow, user=lead, started_by=Actor.user(lead))
    client.get(f"/workflows/{workflow.slug}/trace-drill/")  # the caches of a running server, filled
    with django_assert_num_queries(12):
        assert client.get(f"/workflows/{workflow.slug}/trace-drill/").status_code == 200
    for _ in range(5):
        person = UserFactory()
        person.groups.add(workflow.approver_group)
        trace_drill_start(workflow=workflow, user=person, started_by=Actor.system())

    with django_assert_num_queries(12):
        page = client.get(f"/workflows/{workflow.slug}/trace-drill/").content.decode()

    assert page.count("open</td>") == 6


def test_start_opens_the_drill_for_the_person_who_pressed_it(client, workflow, lead, change):
    client.force_login(lead)

    response = client.post(f"/workflows/{workflow.slug}/trace-drill/")

    drill = TraceDrill.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/drills/trace/{drill.pk}/"
    assert (drill.user, drill.started_by, drill.change_id) == (lead, "lead", change.id)


def test_start_without_an_applied_change_says_why(client, workflow, lead):
    client.force_login(lead)

    response = client.post(f"/workflows/{workflow.slug}/trace-drill/")

    assert response.status_code == 409
    assert "address-updates has no applied change to trace yet" in response.content.decode()
    assert not TraceDrill.objects.exists()


def test_a_workflow_out_of_sight_has_no_drill_page(client, workflow, change):
    client.force_login(UserFactory(username="stranger"))

    assert client.get(f"/workflows/{workflow.slug}/trace-drill/").status_code == 404
    assert client.post(f"/workflows/{workflow.slug}/trace-drill/").status_code == 404
    assert not TraceDrill.objects.exists()


def test_the_drill_page_gives_the_complaint_the_clock_and_the_questions(client, lead, drill):
    client.force_login(lead)

    page = client.get(f"/drills/trace/{drill.pk}/").content.decode()

    assert "Customer CUS-10042 says their shipping address changed yesterday" in page
    assert 'data-target-seconds="300"' in page and "js/stopwatch.js" in page
    for label in (
        "Which change was it?",
        "What did its shipping address hold before?",
        "What did the change set its shipping address to?",
        "Who approved it?",
        "Which model made it?",
        "Which prompt version?",
        "How would you undo it?",
    ):
        assert label in page
    assert "manage.py rollback --change &lt;id&gt;" in page
    assert str(drill.change_id) not in page and "Harbour Road" not in page


def test_blank_answers_are_asked_for_again(client, lead, drill):
    client.force_login(lead)

    response = client.post(f"/drills/trace/{drill.pk}/", {"change": str(drill.change_id)})

    assert response.status_code == 422
    assert response.content.decode().count("Answer this question.") == 6
    drill.refresh_from_db()
    assert drill.passed is None


def test_right_answers_show_passed_and_each_answer(client, lead, drill, change):
    client.force_login(lead)

    response = client.post(f"/drills/trace/{drill.pk}/", right_answers(change))

    assert response.status_code == 302
    page = client.get(f"/drills/trace/{drill.pk}/").content.decode()
    assert '<h2 class="drill-result passed">Passed</h2>' in page
    assert "Every answer was right." in page and page.count(">right</strong>") == 7
    assert "within the target of 5 minutes" in page
    assert "js/stopwatch.js" not in page


def test_a_wrong_answer_shows_failed_and_what_the_trail_holds(client, lead, drill, change):
    client.force_login(lead)

    client.post(f"/drills/trace/{drill.pk}/", right_answers(change) | {"prompt": "address-update@6"})

    page = client.get(f"/drills/trace/{drill.pk}/").content.decode()
    assert '<h2 class="drill-result failed">Failed</h2>' in page
    assert "Wrong: Which prompt version?" in page
    assert '<td data-label="Answer">address-update@6</td>' in page
    assert '<td data-label="The trail holds">address-update@7</td>' in page


def test_only_the_drills_person_answers_others_who_see_the_workflow_read_it(client, second_lead, drill, change):
    client.force_login(second_lead)

    page = client.get(f"/drills/trace/{drill.pk}/").content.decode()
    refused = client.post(f"/drills/trace/{drill.pk}/", right_answers(change))

    assert "Only Dana Lee answers this drill" in page and "Send answers" not in page
    assert refused.status_code == 403 and "only lead answers this drill" in refused.content.decode()
    drill.refresh_from_db()
    assert drill.passed is None


def test_a_drill_of_a_workflow_out_of_sight_is_not_found(client, drill):
    client.force_login(UserFactory(username="stranger"))

    assert client.get(f"/drills/trace/{drill.pk}/").status_code == 404


def test_a_colleagues_answers_are_kept_from_someone_in_the_middle_of_their_own_drill(
    client, workflow, lead, second_lead, drill, change
):
    client.force_login(lead)
    client.post(f"/drills/trace/{drill.pk}/", right_answers(change))
    own = trace_drill_start(workflow=workflow, user=second_lead, started_by=Actor.user(second_lead))
    client.force_login(second_lead)

    during = client.get(f"/drills/trace/{drill.pk}/").content.decode()
    client.post(f"/drills/trace/{own.pk}/", right_answers(change))
    after = client.get(f"/drills/trace/{drill.pk}/").content.decode()

    assert "Passed" in during and "Its answers show here once your own drill on" in during
    assert str(change.id) not in during and "Harbour Road" not in during
    assert "Every answer was right." in after and "12 Harbour Road, Leith" in after


def test_a_drill_replaced_by_a_new_one_reads_as_ended_without_answers(client, workflow, lead, drill):
    trace_drill_start(workflow=workflow, user=lead, started_by=Actor.user(lead))
    client.force_login(lead)

    page = client.get(f"/drills/trace/{drill.pk}/").content.decode()
    again = client.post(f"/drills/trace/{drill.pk}/", {})

    assert '<h2 class="drill-result failed">Failed</h2>' in page
    assert "without answers: a new drill was started in its place" in page
    assert again.status_code == 409 and "this drill is over" in again.content.decode()
