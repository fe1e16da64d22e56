"""Shared fixtures. Tests that need PostgreSQL, Redis or Chromium skip with the reason when it is
absent; with COUNTERSIGN_NO_SKIPS=1 (CI) any skip fails the run instead."""

import os
import shutil
from typing import Any

import pytest
from django.db import connection

from audit.triggers import install_append_only_triggers, remove_append_only_triggers
from tests.helpers.queued import Queued

# `bottlecrm`: a running BottleCRM for the connector's tests (skips with the reason when none is set).
pytest_plugins = ["tests.helpers.bottlecrm"]


def redis_available() -> bool:
    url = os.environ.get("REDIS_URL")
    if not url:
        return False
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    is_postgres = connection.vendor == "postgresql"
    has_redis = redis_available()
    has_chromium = shutil.which("chromium") is not None
    for item in items:
        if item.get_closest_marker("postgres") and not is_postgres:
            item.add_marker(pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://..."))
        if item.get_closest_marker("redis") and not has_redis:
            item.add_marker(pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://..."))
        if item.get_closest_marker("browser") and not has_chromium:
            item.add_marker(pytest.mark.skip(reason="needs Debian's chromium on PATH (apt-get install chromium)"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("COUNTERSIGN_NO_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        if reporter:
            reporter.write_line(
                f"COUNTERSIGN_NO_SKIPS=1: {len(skipped)} test(s) skipped; every part must be present here"
            )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _warm_content_type_cache() -> None:
    """Start every database test with the content-type cache full, as it is in a running server,
    so that query counts do not depend on which test ran before."""
    from django.apps import apps
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()
    ContentType.objects.get_for_models(*apps.get_models())


def _read_store_bindings() -> None:
    """Start every database test with the store bindings read, as a running process has them, so
    that no test counts the read, and none sees a binding an earlier test left behind."""
    from records.store.registry import bindings_current, bindings_reload

    bindings_reload()
    bindings_current()


@pytest.fixture(autouse=True)
def _audit_guard(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Every test that touches the database runs against the real append-only guard.

    After a transactional test the guard is lifted just long enough for the database flush
    to empty the audit table, and put back before the next test.
    """
    names = request.fixturenames
    marker = request.node.get_closest_marker("django_db")
    transactional = (
        "transactional_db" in names or "live_server" in names or bool(marker and marker.kwargs.get("transaction"))
    )
    if not (transactional or "db" in names or marker is not None):
        yield
        return
    request.getfixturevalue("transactional_db" if transactional else "db")
    install_append_only_triggers(connection)
    _warm_content_type_cache()
    _read_store_bindings()
    yield
    if transactional:
        remove_append_only_triggers(connection)


@pytest.fixture
def audit_guard_bypassed(db):  # type: ignore[no-untyped-def]
    """For tests that must tamper with the trail to prove tampering is caught."""
    remove_append_only_triggers(connection)
    yield
    install_append_only_triggers(connection)


@pytest.fixture
def start_worker(transactional_db, tmp_path):  # type: ignore[no-untyped-def]
    """Start real Celery worker processes against the test database and broker; stopped at the end.

    `start_worker(concurrency=2, beat=False, queues=[...], env={...})` returns a running
    `tests.helpers.worker.CeleryWorker`, consuming every queue unless `queues` names some.
    Tests using it see the worker's commits, so they run with `transactional_db`.
    """
    from tests.helpers.worker import CeleryWorker, database_url, purge_broker

    started: list[CeleryWorker] = []
    purge_broker()

    def start(**options):  # type: ignore[no-untyped-def]
        worker = CeleryWorker(
            database_url=database_url(connection.settings_dict),
            log_dir=tmp_path / "workers",
            name=f"test-worker-{len(started) + 1}",
            **options,
        )
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()
    purge_broker()


@pytest.fixture
def crm(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The company's own CRM database (`tests.helpers.crm`), its contacts table fresh, and its URL in
    CRM_DATABASE_URL for a stores file to name. Needs PostgreSQL: mark the test `postgres`."""
    from records.store.registry import bindings_reload
    from tests.helpers.crm import crm_prepared

    if connection.vendor != "postgresql":
        pytest.skip("the sql connector needs PostgreSQL: set DATABASE_URL=postgres://...")
    prepared = crm_prepared()
    monkeypatch.setenv("CRM_DATABASE_URL", prepared.url)
    yield prepared
    bindings_reload()


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[Queued]:
    """What approvals queued for the workers through its one seam (`approvals.jobs`), in order.

    Work is queued when the transaction commits: in a test inside one, run the code under
    `django_capture_on_commit_callbacks(execute=True)` to see it.
    """
    from approvals import jobs

    sent: list[Queued] = []

    def send(name: str, *, args: list[Any] | None = None, kwargs: dict[str, Any] | None = None, **options: Any) -> None:
        sent.append(Queued(name, args, kwargs))

    monkeypatch.setattr(jobs, "send", send)
    return sent
