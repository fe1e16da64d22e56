"""An approved-by-policy proposal is handed to the worker through the configured broker (Redis, or the
embedded filesystem broker), and only once the transaction commits."""

import pytest
from django.conf import settings

from approvals.jobs import APPLY
from approvals.models import Proposal
from config.celery import app as celery_app
from tests.helpers.pipeline import proposal_body


def test_the_apply_task_reaches_the_broker_on_commit(pipeline, customer, django_capture_on_commit_callbacks):
    queue_name = settings.CELERY_TASK_ROUTES[APPLY]["queue"]
    with celery_app.connection_for_write() as connection:
        queue = connection.SimpleQueue(queue_name)
        queue.clear()
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = pipeline.post("/api/v1/proposals", proposal_body(changes={"priority": "urgent"}, follow_ups=[]))
        assert response.json()["status"] == "approved"
        with pytest.raises(queue.Empty):
            queue.get(block=False)  # nothing is queued before the transaction commits
        for callback in callbacks:
            callback()
        message = queue.get(timeout=5)
        message.ack()
        queue.close()
    assert message.headers["task"] == "approvals.apply_approved"
    args, kwargs, _ = message.decode()
    assert args == [[Proposal.objects.get().pk]]
    assert kwargs == {}
