"""Several OS processes append to the trail at once; the chain must come out whole, never forked."""

import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from audit.models import AuditEvent
from audit.services import GENESIS_HASH, audit_verify_chain

PROCESSES = 4
EVENTS_EACH = 40

APPENDER = """
import os, time
from pathlib import Path
from audit.services import Actor, audit_record
name = os.environ["APPENDER_NAME"]
Path(os.environ["READY_DIR"], name).touch()
go = Path(os.environ["GO_FILE"])
while not go.exists():
    time.sleep(0.002)
for n in range(int(os.environ["EVENTS_EACH"])):
    audit_record(action="record.imported", actor=Actor.worker(name), record_id=f"CUS-{n}", details={"n": n})
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
