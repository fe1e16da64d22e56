"""The undo pages show a change, a bulk undo's dry run and its job only to those who see the workflow
whose changes they are; anything else reads as not there."""

import re

from django.urls import reverse

from approvals.models import UndoJob
from tests.helpers.two_workflows import A_MARK, B_MARK, two_workflows


def test_the_undo_pages_of_a_workflow_out_of_sight_are_not_found(client, db):
    world = two_workflows()
    client.force_login(world.people["lead"])
    assert client.get(reverse("change-undo", args=[world.b.change.id])).status_code == 404
    assert (
        client.post(reverse("change-undo", args=[world.b.change.id]), {"field": ["refund_status"]}).status_code == 404
    )
    assert client.get(reverse("undo-job", args=[world.b_undo_job.pk])).status_code == 404
    assert client.post(reverse("undo-job-cancel", args=[world.b_undo_job.pk])).status_code == 404
    assert UndoJob.objects.get(pk=world.b_undo_job.pk).cancel_requested_at is None
    assert client.get(reverse("change-undo", args=[world.a.change.id])).status_code == 200


def test_a_bulk_undo_offers_and_finds_only_what_is_in_sight(client, db):
    world = two_workflows()
    client.force_login(world.people["lead"])
    form = client.get(reverse("undo-bulk")).content.decode()
    assert re.findall(r'<option value="([a-z-]+)"', form) == [world.a.workflow.slug]
    response = client.get(reverse("undo-bulk"), {"scope": "batch", "batch": world.b.batch.pk})
    assert f"There is no batch {world.b.batch.pk}." in response.content.decode()
    assert B_MARK not in response.content.decode()
    dry_run = client.get(reverse("undo-bulk"), {"scope": "prompt_version", "prompt_version": f"refund@{B_MARK}"})
    assert "<strong>0</strong> changes to undo" in dry_run.content.decode()
    own = client.get(reverse("undo-bulk"), {"scope": "prompt_version", "prompt_version": f"address@{A_MARK}"})
    assert "<strong>1</strong> change to undo" in own.content.decode()
