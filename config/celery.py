import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("countersign")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def _database_connections_as_for_a_request(**kwargs: Any) -> None:
    """Around each task, Django's own rule for connections: close one that broke or outlived CONN_MAX_AGE.

    Celery would otherwise close every connection around every task (see CELERY_DB_REUSE_MAX), so
    each chunk of writes would open a new PostgreSQL session and plan its statements afresh.
    """
    from django.db import close_old_connections

    close_old_connections()
