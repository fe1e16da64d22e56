"""What a test holds from a session of its own, for a worker to run into (PostgreSQL)."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection, transaction

from audit.services import Actor, audit_record
from tests.helpers.worker import database_url


def held_row(table: str, column: str, value: object) -> psycopg.Connection:
    """A transaction of another session that holds one row of `table` FOR UPDATE until it is rolled back."""
    holder = psycopg.connect(database_url(connection.settings_dict))
    rows = holder.execute(f"SELECT 1 FROM {table} WHERE {column} = %s FOR UPDATE", [value]).fetchall()  # noqa: S608
    assert rows, f"nothing to hold in {table}"
    return holder


@contextmanager
def trail_held() -> Iterator[None]:
    """Another transaction has appended to the trail and not committed yet: every other append, a
    worker's included, waits for it, in the middle of its write."""
    appended, done = threading.Event(), threading.Event()

    def append_and_wait() -> None:
        try:
            with transaction.atomic():
                audit_record(action="trail.exported", actor=Actor.system("auditor"), reason="a long export")
                appended.set()
                done.wait(60)
        finally:
            connection.close()

    thread = threading.Thread(target=append_and_wait)
    thread.start()
    try:
        assert appended.wait(10), "the other append did not start"
        yield
    finally:
        done.set()
        thread.join(10)


def sessions_waiting() -> set[int]:
    """The sessions that wait on a lock (not the holder's, which waits on none)."""
    with psycopg.connect(database_url(connection.settings_dict), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        ).fetchall()
    return {pid for (pid,) in rows}
