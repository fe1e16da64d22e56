import os
from pathlib import Path
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

app = Celery("countersign")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _task_modules_homes() -> list[str]:
    """Every installed app, and every package inside one, that holds a `tasks` module: each subdomain
    keeps its own tasks, and none is listed by hand."""
    from django.apps import apps

    homes = []
    for config in apps.get_app_configs():
        homes.append(config.name)
        homes += sorted(f"{config.name}.{found.parent.name}" for found in Path(config.path).glob("*/tasks.py"))
    return homes


app.autodiscover_tasks(_task_modules_homes)


@task_prerun.connect
@task_postrun.connect
def _database_connections_as_for_a_request(**kwargs: Any) -> None:
    """Around each task, Django's own rule for connections: close one that broke or outlived CONN_MAX_AGE.

    Celery would otherwise close every connection around every task (see CELERY_DB_REUSE_MAX), so
    each chunk of writes would open a new PostgreSQL session and plan its statements afresh.
    """
    from django.db import close_old_connections

    close_old_connections()


@worker_init.connect
def _worker_database_sessions(**kwargs: Any) -> None:
    """A worker's PostgreSQL sessions give up waiting for a lock after COUNTERSIGN["DB_LOCK_TIMEOUT_MS"]
    and on a statement after COUNTERSIGN["DB_STATEMENT_TIMEOUT_MS"] (the apply path tries such a write
    again later: approvals.applying.attempts), and name themselves `countersign-worker` in
    pg_stat_activity. A session whose worker process is gone (killed, out of memory, past its hard
    time limit) ends within a second even while it waits on a lock, instead of holding the locks it
    took until that lock is given. Set when the worker starts, before its pool's processes or threads
    open a connection, as options of the connection itself: no statement more per session."""
    from django.conf import settings
    from django.db import connections

    session = {
        "lock_timeout": int(settings.COUNTERSIGN["DB_LOCK_TIMEOUT_MS"]),
        "statement_timeout": int(settings.COUNTERSIGN["DB_STATEMENT_TIMEOUT_MS"]),
        "client_connection_check_interval": 1000,
    }
    for alias in connections:
        wrapper = connections[alias]
        if wrapper.vendor != "postgresql":
            continue
        options = wrapper.settings_dict.setdefault("OPTIONS", {})
        given = str(options.get("options", ""))
        options["options"] = " ".join([given, *(f"-c {name}={value}" for name, value in session.items())]).strip()
        options.setdefault("application_name", "countersign-worker")
        wrapper.close()  # one opened before (the start-up checks) is opened again with them
