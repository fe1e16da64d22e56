"""The test suite: the same services as the environment gives, fast hashing."""

import os
from pathlib import Path

# Without REDIS_URL the broker is a folder of the test run's own, apart from the demo's queue; the
# worker processes that tests start inherit this variable, so they and the test agree on it.
os.environ.setdefault(
    "CELERY_FILESYSTEM_DIR",
    str(Path(os.environ.get("COUNTERSIGN_VAR_DIR", Path(__file__).resolve().parents[2] / "var")) / "test-broker"),
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
