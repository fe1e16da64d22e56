"""Appenders in several processes and connections at once: the chain comes out whole, never forked,
and ids follow it."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections, transaction

from audit.models import AuditEvent
from audit.services import GENESIS_HASH, Actor, _lock_chain_and_get_head, audit_record, audit_verify_chain

PROCESSES = 4
EVENTS_EACH = 40

APPENDER = """
import os, time
from pathlib import Path
from django.db import transaction
from audit.services import Actor, audit_record
name = os.environ["APPENDER_NAME"]
Path(os.environ["READY_DIR"], name).touch()
go = Path(os.environ["GO_FILE"])
while not go.exists():
    time.sleep(0.002)
for n in range(int(os.environ["EVENTS_EACH"])):
    with transaction.atomic():
        audit_record(action="record.imported", actor=Actor.worker(name), record_id=f"CUS-{n}", details={"n": n})
        time.sleep(0.002)  # hold the chain a moment, as a real transaction does, so the others queue behind it
"""


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return f"postgres://{quote(db['USER'])}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_appends_from_several_processes_leave_one_valid_chain(tmp_path: Path) -> None:
    ready, go = tmp_path / "ready", tmp_path / "go"
    ready.mkdir()
    base_env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "READY_DIR": str(ready),
        "GO_FILE": str(go),
        "EVENTS_EACH": str(EVENTS_EACH),
    }
    appenders = [
        subprocess.Popen(
            [sys.executable, "manage.py", "shell", "-c", APPENDER],
            cwd=settings.BASE_DIR,
            env={**base_env, "APPENDER_NAME": f"appender-{n}"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(PROCESSES)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(list(ready.iterdir())) < PROCESSES:
            assert time.monotonic() < deadline, "the appender processes did not start"
            assert all(p.poll() is None for p in appenders), "an appender process died while starting"
            time.sleep(0.05)
        go.touch()
        for process in appenders:
            _, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr.decode()
    finally:
        for process in appenders:
            if process.poll() is None:
                process.kill()
                process.wait()

    events = list(AuditEvent.objects.order_by("id"))
    assert len(events) == PROCESSES * EVENTS_EACH
    # Each event links to the one just before it: one line, no two events claiming the same predecessor.
    assert [e.prev_hash for e in events] == [GENESIS_HASH] + [e.hash for e in events[:-1]]
    assert audit_verify_chain() == (PROCESSES * EVENTS_EACH, None)
    call_command("verify_audit")
    # The processes really did append at the same time: their events interleave.
    switches = sum(1 for a, b in zip(events, events[1:], strict=False) if a.actor_label != b.actor_label)
    assert switches >= PROCESSES


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_append_waiting_for_the_chain_draws_its_id_only_once_it_holds_the_chain() -> None:
    """Ids must follow the chain: an appender that waited draws a later id than the one it waited for."""
    outcome: dict[str, object] = {}

    def append_from_another_connection() -> None:
        try:
            outcome["event"] = audit_record(action="workflow.created", actor=Actor.system("waited"))
        except Exception as error:  # noqa: BLE001 - reported to the test below
            outcome["error"] = error
        finally:
            connections.close_all()

    with transaction.atomic():
        _lock_chain_and_get_head()
        waiter = threading.Thread(target=append_from_another_connection)
        waiter.start()
        deadline = time.monotonic() + 10
        with connection.cursor() as cursor:
            while True:
                cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
                if cursor.fetchone()[0] == 1:
                    break
                assert time.monotonic() < deadline, "the second appender never waited for the chain"
                time.sleep(0.01)
        ahead = audit_record(action="workflow.created", actor=Actor.system("held the chain"))
    waiter.join(timeout=10)
    assert "error" not in outcome, outcome.get("error")
    waited = outcome["event"]
    assert isinstance(waited, AuditEvent)
    assert waited.prev_hash == ahead.hash
    assert waited.pk > ahead.pk
    assert audit_verify_chain() == (2, None)
