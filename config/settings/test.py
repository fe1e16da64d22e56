"""The test suite: the same services as the environment gives, fast hashing."""

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

_ROOT = Path(__file__).resolve().parents[2]


def _own_redis_database(url: str, index: int) -> str:
    """`url` moved `index` databases on from the one it names (redis://host:6379/13, index 1: /14)."""
    parts = urlsplit(url)
    number = int(parts.path.strip("/") or 0) + index
    return urlunsplit(parts._replace(path=f"/{number}"))


# Under pytest-xdist (`make test` runs two) each worker process is told its name, gw0, gw1, ..., in
# PYTEST_XDIST_WORKER before these settings load; pytest-django gives it a test database of its own
# (test_<name>_gw0, test.sqlite3_gw0). It gets the rest of its own here: the Redis database after the
# one REDIS_URL names by its number (gw0 that one, gw1 the next), and a var folder (filesystem broker,
# audit anchors, mail) beneath the shared one. The environment carries them to the worker, web and
# command processes its tests start, which therefore keep them; COUNTERSIGN_TEST_WORKER says they are
# already moved, since a process a test starts may inherit PYTEST_XDIST_WORKER as well.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker and os.environ.get("COUNTERSIGN_TEST_WORKER") != _worker:
    os.environ["COUNTERSIGN_TEST_WORKER"] = _worker
    _shared_var = Path(os.environ.get("COUNTERSIGN_VAR_DIR", _ROOT / "var"))
    os.environ["COUNTERSIGN_VAR_DIR"] = str(_shared_var / f"test-{_worker}")
    # The test run's own broker folder, named by the run (below) or by whoever started it.
    _shared_broker = Path(os.environ.get("CELERY_FILESYSTEM_DIR", _shared_var / "test-broker"))
    os.environ["CELERY_FILESYSTEM_DIR"] = str(_shared_broker / _worker)
    if os.environ.get("REDIS_URL"):
        os.environ["REDIS_URL"] = _own_redis_database(os.environ["REDIS_URL"], int(_worker.removeprefix("gw")))

# Without REDIS_URL the broker is a folder of the test run's own, apart from the demo's queue; the
# worker processes that tests start inherit this variable, so they and the test agree on it.
os.environ.setdefault(
    "CELERY_FILESYSTEM_DIR",
    str(Path(os.environ.get("COUNTERSIGN_VAR_DIR", _ROOT / "var")) / "test-broker"),
)

from config.settings.base import *  # noqa: E402, F403

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if "EMAIL_BACKEND" not in os.environ:
    # A worker process started by a test is given a file backend, so the test can read what it sent.
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
ALLOWED_HOSTS = ["*"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory, so that a worker process started by a test sees the same database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}  # noqa: F405

# The test process changes bindings only through the services, which tell the registry at once, so it
# never reads them again on a timer (that read would land in tests that count queries). The worker
# processes that tests start are given a short interval instead (tests.helpers.worker).
COUNTERSIGN["STORES_REFRESH_SECONDS"] = float(os.environ.get("COUNTERSIGN_STORES_REFRESH_SECONDS", "inf"))  # noqa: F405

# Serve static files from the app folders, as in development; no collectstatic before tests.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
