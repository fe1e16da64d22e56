"""A stop switch is shown, and released, only by those who see the workflow it stops; a global stop
is shown to everyone."""

from django.urls import reverse

from approvals.models import StopScope, StopSwitch
from approvals.stops.services import stop_engage
from audit.services import Actor
from tests.helpers.two_workflows import B_MARK, two_workflows


def test_a_stop_of_a_workflow_out_of_sight_is_neither_shown_nor_released(client, db):
    world = two_workflows()
    release = reverse("stop-release", args=[world.b_stop.pk])
    client.force_login(world.people["lead"])
    assert client.get(release).status_code == 404
    assert client.post(release, {"note": "mine now"}).status_code == 404
    assert StopSwitch.objects.get(pk=world.b_stop.pk).released_at is None
    assert 'class="banner stop-banner"' not in client.get(reverse("workflow-list")).content.decode()
    client.force_login(world.people["ops"])
    page = client.get(reverse("workflow-list")).content.decode()
    assert page.count('class="banner stop-banner"') == 1 and B_MARK in page
    assert client.get(release).status_code == 200


def test_a_global_stop_is_shown_to_everyone(client, db):
    world = two_workflows()
    stop_engage(scope=StopScope.GLOBAL, reason="incident 42: every write held", actor=Actor.system("test"))
    for role in ("agent", "lead", "root"):
        client.force_login(world.people[role])
        page = client.get(reverse("workflow-list")).content.decode()
        assert page.count('class="banner stop-banner"') == 1 and "incident 42" in page and B_MARK not in page
