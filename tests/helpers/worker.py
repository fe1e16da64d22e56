"""A real Celery worker process for tests and benchmarks.

It runs `celery -A config worker` against the database the test uses (pytest-django's test
database, named through DATABASE_URL) and the broker the test process sends to: Redis when
REDIS_URL is set, else the filesystem broker in the folder named by CELERY_FILESYSTEM_DIR (set by
the test settings and inherited). It consumes every queue unless it is given some (`queues=`).
Never eager mode: what a test claims was applied, a worker applied.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]

# Figures that make a worker under test quick to retry, sweep and run follow-ups; a test may override any.
FAST_SETTINGS = {
    "COUNTERSIGN_APPLY_RETRY_SECONDS": "0.2",
    "COUNTERSIGN_APPLY_STALE_AFTER_SECONDS": "2",
    "COUNTERSIGN_APPLY_SWEEP_INTERVAL_SECONDS": "1",
    "COUNTERSIGN_FOLLOWUP_POLL_SECONDS": "1",
    "COUNTERSIGN_FOLLOWUP_RETRY_SECONDS": "0.5",
    "COUNTERSIGN_CALLBACK_RETRY_SECONDS": "0.2",
    "COUNTERSIGN_HTTP_TIMEOUT_SECONDS": "3",
    "COUNTERSIGN_STORES_REFRESH_SECONDS": "0.5",
}


def database_url(settings_dict: dict[str, Any]) -> str:
    """A DATABASE_URL for the database `settings_dict` names (after test setup: the test database)."""
    if settings_dict["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    user = quote(settings_dict.get("USER") or "")
    password = quote(settings_dict.get("PASSWORD") or "")
    credentials = f"{user}:{password}@" if password else f"{user}@" if user else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{settings_dict['NAME']}"


def purge_broker() -> None:
    """Empty the broker so no message from an earlier test reaches this test's worker."""
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        return
    folder = Path(os.environ["CELERY_FILESYSTEM_DIR"])
    for name in ("queue", "processed"):
        shutil.rmtree(folder / name, ignore_errors=True)
        (folder / name).mkdir(parents=True, exist_ok=True)


def wait_until(check: Callable[[], Any], *, timeout: float, interval: float = 0.05, what: str = "") -> Any:
    """Poll `check` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)


class CeleryWorker:
    """One `celery worker` process group: its main process and its pool (and beat, when asked)."""

    def __init__(
        self,
        *,
        database_url: str,
        log_dir: Path,
        name: str = "test-worker",
        concurrency: int = 2,
        pool: str = "prefork",
        beat: bool = False,
        queues: list[str] | None = None,
        env: dict[str, str] | None = None,
        settings_module: str = "config.settings.test",
    ) -> None:
        self.database_url = database_url
        self.log_dir = log_dir
        self.name = name
        self.concurrency = concurrency
        self.pool = pool
        self.beat = beat
        # Every queue unless a test names some (settings.TASK_QUEUES: apply, followups, maintenance).
        self.queues = list(queues) if queues is not None else list(settings.TASK_QUEUES)
        self.env = {**FAST_SETTINGS, **(env or {})}
        self.settings_module = settings_module
        self.process: subprocess.Popen | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}-{self.starts}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--loglevel=INFO",
            f"--pool={self.pool}",
            f"--concurrency={self.concurrency}",
            f"--hostname={self.name}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            f"--queues={','.join(self.queues)}",
        ]
        if self.beat:
            command += ["--beat", f"--schedule={self.log_dir / (self.name + '-beat-schedule')}"]
        return command

    def environment(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": self.settings_module,
                "DATABASE_URL": self.database_url,
                "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
                "EMAIL_FILE_PATH": str(self.mail_dir),
                "PYTHONUNBUFFERED": "1",
                **self.env,
            }
        )
        return env

    @property
    def mail_dir(self) -> Path:
        return self.log_dir / "mail"

    def start(self, *, timeout: float = 60) -> "CeleryWorker":
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while " ready." not in self.log():
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the worker was not ready after {timeout}s:\n{self.log()[-4000:]}")
            time.sleep(0.1)
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """`kill -9` the worker and every process of its pool, at once."""
        self._signal_group(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)

    def stop(self, *, timeout: float = 3) -> None:
        """Cold shutdown (SIGQUIT to the main process), then SIGKILL for whatever is left of the group.

        Nothing a test needs is in flight by then; a message left unacknowledged is purged.
        """
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self._signal_group(signal.SIGKILL)
        if self.process.poll() is None:
            self.process.wait(timeout=10)


def writes_per_worker(batch_id: int) -> Counter:
    """Changes committed in a batch, by the worker process that applied them."""
    from django.db.models import Count

    from records.models import Change

    rows = Change.objects.filter(batch_id=batch_id).values_list("applied_by").annotate(n=Count("id"))
    return Counter(dict(rows))


def engage_counting_writes(engage: Callable[[], Any], *, batch_id: int) -> tuple[Any, Counter]:
    """Engage a stop switch (PostgreSQL) and count, per worker process, the writes committed before it.

    The count is exact: the change table is locked SHARE first, which waits for every transaction
    that has already inserted a Change to commit and holds back new inserts until the switch
    commits, so each write is plainly before or after it. A write held back this way had already
    passed its stop check: it is the write in flight that the switch lets finish.
    """
    from django.db import connection, transaction

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("LOCK TABLE records_change IN SHARE MODE")
        before = writes_per_worker(batch_id)
        switch = engage()
    return switch, before


def quiet_after(count: Callable[[], int], *, for_seconds: float, interval: float = 0.01) -> tuple[int, float]:
    """Poll `count` until it has not changed for `for_seconds`.

    Returns the final count and the seconds from the call to the last change seen.
    """
    started = time.monotonic()
    last, changed = count(), started
    while time.monotonic() - changed < for_seconds:
        time.sleep(interval)
        now = count()
        if now != last:
            last, changed = now, time.monotonic()
    return last, changed - started
