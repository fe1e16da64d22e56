"""Settings shared by every environment. Everything that differs comes from the environment."""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(os.environ.get("COUNTERSIGN_VAR_DIR", BASE_DIR / "var"))

DEV_SECRET_KEY = "countersign-development-key-never-use-in-production"  # noqa: S105
SECRET_KEY = os.environ.get("SECRET_KEY", DEV_SECRET_KEY)
DEBUG = os.environ.get("DEBUG", "").lower() in {"1", "true", "yes", "on"}
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
HOST = os.environ.get("HOST", "127.0.0.1")
PORT = int(os.environ.get("PORT", "8000"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "guardian",
    "axes",
    "ninja",  # serves the API docs' Swagger UI from its own static files, not a CDN
    "core",
    "audit",
    "records",
    "approvals",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.access.ActingUserMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "core.middleware.ViewerTimezoneMiddleware",
    # Last: turns a refused sign-in (too many failures) into the lockout page.
    "axes.middleware.AxesMiddleware",
]

# Content-Security-Policy: pages run only the app's own scripts and styles, from its own static files
# (no inline script, no inline style attribute, nothing from another origin), and no other site may
# frame them.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "font-src": [CSP.SELF],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.SELF],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        # Django's engine, with each rendered page's refused characters escaped (see core/templates.py).
        "BACKEND": "core.templates.EscapingDjangoTemplates",
        "NAME": "django",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.nav",
                "approvals.stops.context_processors.stop_switch",
                "approvals.applying.context_processors.store_outages",
                "approvals.workflows.context_processors.audit_alarm",
            ],
        },
    },
]


def database_from_env() -> dict[str, Any]:
    url = os.environ.get("DATABASE_URL")
    if url:
        config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True))
    else:
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        config = {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "countersign.sqlite3"),
        }
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # IMMEDIATE takes the write lock when a transaction opens, so two
        # processes (web and worker) never deadlock upgrading a read lock.
        config["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    return config


DATABASES = {"default": database_from_env()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTHENTICATION_BACKENDS = [
    # First, so that a locked-out sign-in is refused before any password is hashed.
    "core.auth.SignInThrottle",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row
GUARDIAN_RAISE_403 = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in throttling (django-axes): after AXES_FAILURE_LIMIT failures for one user name from one
# address, that pair is refused for the cool-off time without checking the password.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# Lockouts are lifted with `manage.py axes_reset_username NAME` (or `axes_reset` for all), not the admin.
AXES_ENABLE_ADMIN = False

# A signed-in session ends after at most 12 hours (a working day); SESSION_COOKIE_AGE may only shorten it.
SESSION_COOKIE_AGE = min(int(os.environ.get("SESSION_COOKIE_AGE", str(12 * 3600))), 12 * 3600)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Requests: the API refuses bodies beyond this size with 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = 8 * 1024 * 1024

# Celery. Without REDIS_URL the broker is the filesystem under var/, served by a real worker.
REDIS_URL = os.environ.get("REDIS_URL", "")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Celery closes a worker's database connections around every task unless told to reuse them; they
# are closed as Django closes them after a request instead (config/celery.py), by CONN_MAX_AGE.
CELERY_DB_REUSE_MAX = 1_000_000
# Publishing a task gives up after about this long when the broker does not answer (refused, or a
# host that accepts the connection and never replies): a request never waits on the broker longer,
# and what it queued is found again by the sweepers, since the database holds it (approvals/jobs.py).
PUBLISH_TIMEOUT_SECONDS = float(os.environ.get("COUNTERSIGN_PUBLISH_TIMEOUT_SECONDS", "2"))
# Connecting: attempts for at most the timeout in all, a short pause between them.
CELERY_BROKER_CONNECTION_TIMEOUT = PUBLISH_TIMEOUT_SECONDS
_connect_retries = {"interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# Publishing on a connection that broke: one new connection and one more try (a pooled connection
# may be stale after the broker restarted), then give up.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2}
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
        # Longer than any task: an unacknowledged message is redelivered only after this.
        "visibility_timeout": 3600,
        # Without these a broker that stops answering holds a publish (and its request) forever.
        "socket_connect_timeout": PUBLISH_TIMEOUT_SECONDS,
        "socket_timeout": PUBLISH_TIMEOUT_SECONDS,
        **_connect_retries,
    }
else:
    _broker_dir = Path(os.environ.get("CELERY_FILESYSTEM_DIR", VAR_DIR / "celery"))
    _queue_dir = _broker_dir / "queue"
    _processed_dir = _broker_dir / "processed"
    _control_dir = _broker_dir / "control"
    for _folder in (_queue_dir, _processed_dir, _control_dir):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "control_folder": str(_control_dir),
        "store_processed": False,
        **_connect_retries,
    }
# Three queues, each with workers of its own, so no kind of work waits behind another: a bulk apply
# never delays an override's expiry, and a slow webhook never delays an apply. Every task is named
# here (tests/approvals/faults/test_queues.py fails on a task of ours that is not); run_due_followups is a
# beat task, but it sends mail and webhooks, so it runs beside the callbacks rather than the
# housekeeping it could otherwise hold up.
TASK_QUEUES: dict[str, list[str]] = {
    "apply": ["approvals.apply_approved", "approvals.run_undo_job"],
    "followups": ["approvals.run_due_followups", "approvals.send_callback", "approvals.deliver_notices"],
    "maintenance": [
        "approvals.expire_overrides",
        "approvals.purge_idempotency_keys",
        "approvals.sweep_approved",
        "approvals.sweep_undo_jobs",
        "approvals.scan_sla",
        "approvals.expire_proposals",
        "approvals.sweep_notices",
        "approvals.record_pending_digests",
        "approvals.fold_metrics",
        "approvals.notice_expiring_overrides",
        "audit.purge_expired_artifacts",
        "audit.write_anchor",
        "audit.verify_chain",
    ],
}
CELERY_TASK_ROUTES = {task: {"queue": queue} for queue, tasks in TASK_QUEUES.items() for task in tasks}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE: dict = {}
# Overrides are checked for expiry at each use; this only writes the expiry to the trail on time.
CELERY_BEAT_SCHEDULE["expire-overrides"] = {"task": "approvals.expire_overrides", "schedule": 15.0}
CELERY_BEAT_SCHEDULE["purge-idempotency-keys"] = {
    "task": "approvals.purge_idempotency_keys",
    "schedule": 3600.0,
}
ARTIFACT_PURGE_EVERY_SECONDS = int(os.environ.get("ARTIFACT_PURGE_EVERY_SECONDS", "60"))
CELERY_BEAT_SCHEDULE["purge-expired-artifacts"] = {
    "task": "audit.purge_expired_artifacts",
    "schedule": float(ARTIFACT_PURGE_EVERY_SECONDS),
    # A purge still queued when the next one is due is dropped; the next one does its work.
    "options": {"expires": float(ARTIFACT_PURGE_EVERY_SECONDS)},
}

# Anchors of the audit chain (audit/anchors.py): beat signs the chain's head with AUDIT_ANCHOR_KEY (a
# key of its own, never SECRET_KEY, kept away from the database) and appends it to each sink named in
# AUDIT_ANCHOR_SINKS: `file` (JSON lines, appended to AUDIT_ANCHOR_FILE), `http` (POSTed as JSON to
# AUDIT_ANCHOR_URL), `syslog` (to AUDIT_ANCHOR_SYSLOG_ADDRESS: a socket path or host:port).
DEV_AUDIT_ANCHOR_KEY = "countersign-development-anchor-key-never-use-in-production"  # noqa: S105
AUDIT_ANCHOR_KEY = os.environ.get("AUDIT_ANCHOR_KEY", DEV_AUDIT_ANCHOR_KEY)
AUDIT_ANCHOR_SINKS = os.environ.get("AUDIT_ANCHOR_SINKS", "file")
AUDIT_ANCHOR_FILE = os.environ.get("AUDIT_ANCHOR_FILE", str(VAR_DIR / "audit-anchors.jsonl"))
AUDIT_ANCHOR_URL = os.environ.get("AUDIT_ANCHOR_URL", "")
AUDIT_ANCHOR_SYSLOG_ADDRESS = os.environ.get("AUDIT_ANCHOR_SYSLOG_ADDRESS", "/dev/log")
AUDIT_ANCHOR_EVERY_SECONDS = float(os.environ.get("AUDIT_ANCHOR_EVERY_SECONDS", "60"))
CELERY_BEAT_SCHEDULE["audit-write-anchor"] = {
    "task": "audit.write_anchor",
    "schedule": AUDIT_ANCHOR_EVERY_SECONDS,
}
# Beat verifies the events appended since its last run; a broken chain appends `audit.broken`, shows a
# banner to workflow owners and auditors, and turns the health endpoint to 503. Neither task expires in
# the queue: a run that waited behind a backlog still does its work, and a repeat finds little to do.
AUDIT_VERIFY_EVERY_SECONDS = float(os.environ.get("AUDIT_VERIFY_EVERY_SECONDS", "300"))
CELERY_BEAT_SCHEDULE["audit-verify-chain"] = {
    "task": "audit.verify_chain",
    "schedule": AUDIT_VERIFY_EVERY_SECONDS,
}

# `/metrics` answers only `Authorization: Bearer <METRICS_TOKEN>`; without a token set it is not served.
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# Its counters are running totals of the trail (approvals/noticing/tallies.py): each scrape folds in a
# chunk of what the trail gained, and beat folds every METRICS_FOLD_EVERY_SECONDS until caught up, so a
# long trail is counted in the worker rather than in a scrape. A run still queued when the next is due
# is dropped.
METRICS_FOLD_EVERY_SECONDS = float(os.environ.get("METRICS_FOLD_EVERY_SECONDS", "60"))
CELERY_BEAT_SCHEDULE["metrics-fold"] = {
    "task": "approvals.fold_metrics",
    "schedule": METRICS_FOLD_EVERY_SECONDS,
    "options": {"expires": METRICS_FOLD_EVERY_SECONDS},
}

LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
if CELERY_BROKER_URL == "filesystem://":
    # The embedded broker's URL names no host, as it has none; kombu would warn of that at every start.
    LOGGING["loggers"]["kombu.connection"] = {"level": "ERROR"}

COUNTERSIGN: dict[str, Any] = {
    "API_MAX_BATCH_ITEMS": 1000,
    "IDEMPOTENCY_KEY_TTL_HOURS": 24,
    "SERVICE_ACCOUNT_TOUCH_SECONDS": 60,
}


def _env_number(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


# Applying approved proposals, follow-ups and outcome callbacks. Every figure can be set from the
# environment as COUNTERSIGN_<NAME> (seconds unless the name says otherwise).
COUNTERSIGN.update(
    {
        name: _env_number(f"COUNTERSIGN_{name}", default)
        for name, default in {
            "APPLY_CHUNK_SIZE": 50,
            "APPLY_MAX_ATTEMPTS": 5,
            "APPLY_RETRY_SECONDS": 10,
            "APPLY_STALE_AFTER_SECONDS": 120,
            "APPLY_SWEEP_INTERVAL_SECONDS": 60,
            "APPLY_PAUSE_SECONDS": 0,
            "FOLLOWUP_HOLD_SECONDS": 600,
            "FOLLOWUP_POLL_SECONDS": 15,
            "FOLLOWUP_MAX_ATTEMPTS": 5,
            "FOLLOWUP_RETRY_SECONDS": 30,
            "HTTP_TIMEOUT_SECONDS": 10,
            "EMAIL_TIMEOUT_SECONDS": 10,
            # A claimed follow-up not yet started may be taken by another run after this; one
            # started and never reported back is recorded as of unknown outcome after this.
            "FOLLOWUP_CLAIM_SECONDS": 300,
            "FOLLOWUP_UNKNOWN_AFTER_SECONDS": 3600,
            "CALLBACK_MAX_RETRIES": 6,
            "CALLBACK_RETRY_SECONDS": 5,
            # How often a process reads the record-store bindings again (see records.store.registry).
            "STORES_REFRESH_SECONDS": 5,
        }.items()
    }
)
COUNTERSIGN["PUBLISH_TIMEOUT_SECONDS"] = PUBLISH_TIMEOUT_SECONDS
# Outgoing mail (follow-ups). The embedded default writes messages as files under var/mail; SMTP (the
# production default) is reached at EMAIL_HOST, and a server that does not answer fails the send
# after the timeout.
FILE_EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
SMTP_EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
EMAIL_OPTIONS: dict[str, dict[str, Any]] = {
    "django.core.mail.backends.filebased.EmailBackend": {
        "file_path": os.environ.get("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
    },
    "django.core.mail.backends.smtp.EmailBackend": {
        "host": os.environ.get("EMAIL_HOST", "localhost"),
        "port": int(os.environ["EMAIL_PORT"]) if os.environ.get("EMAIL_PORT") else None,
        "username": os.environ.get("EMAIL_HOST_USER", ""),
        "password": os.environ.get("EMAIL_HOST_PASSWORD", ""),
        "use_tls": os.environ.get("EMAIL_USE_TLS", "").lower() in {"1", "true", "yes"},
        "timeout": COUNTERSIGN["EMAIL_TIMEOUT_SECONDS"],
    },
}


def mailers(default_backend: str) -> dict[str, dict[str, Any]]:
    backend = os.environ.get("EMAIL_BACKEND", default_backend)
    return {"default": {"BACKEND": backend, "OPTIONS": EMAIL_OPTIONS.get(backend, {})}}


MAILERS = mailers(FILE_EMAIL_BACKEND)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "countersign@localhost")

COUNTERSIGN["OPS_MANAGER_GROUP"] = os.environ.get("COUNTERSIGN_OPS_MANAGER_GROUP", "ops-managers")
CELERY_BEAT_SCHEDULE["approvals-apply-sweeper"] = {
    "task": "approvals.sweep_approved",
    "schedule": COUNTERSIGN["APPLY_SWEEP_INTERVAL_SECONDS"],
}
CELERY_BEAT_SCHEDULE["approvals-follow-ups"] = {
    "task": "approvals.run_due_followups",
    "schedule": COUNTERSIGN["FOLLOWUP_POLL_SECONDS"],
}

# How often a batch's page asks for news while the worker still has approved proposals of it to write.
COUNTERSIGN["BATCH_POLL_SECONDS"] = _env_number("COUNTERSIGN_BATCH_POLL_SECONDS", 2)

# Undo: changes per transaction in a bulk undo, and how often its progress bar asks for news.
COUNTERSIGN["UNDO_CHUNK_SIZE"] = int(_env_number("COUNTERSIGN_UNDO_CHUNK_SIZE", 200))
COUNTERSIGN["UNDO_POLL_SECONDS"] = _env_number("COUNTERSIGN_UNDO_POLL_SECONDS", 1)
COUNTERSIGN["UNDO_STALE_AFTER_SECONDS"] = _env_number("COUNTERSIGN_UNDO_STALE_AFTER_SECONDS", 120)
CELERY_BEAT_SCHEDULE["approvals-undo-sweeper"] = {
    "task": "approvals.sweep_undo_jobs",
    "schedule": _env_number("COUNTERSIGN_UNDO_SWEEP_INTERVAL_SECONDS", 60),
}

# Pending work that waits: how often beat looks for proposals past their workflow's decide_within
# (its approvers are told, then the group on override duty at twice it) and past its expire_after
# (they expire). Runs that piled up while no maintenance worker was there find nothing left to do
# after the first, so they are not expired.
COUNTERSIGN["WAITING_SCAN_SECONDS"] = _env_number("COUNTERSIGN_WAITING_SCAN_SECONDS", 60)
CELERY_BEAT_SCHEDULE["approvals-sla-scan"] = {
    "task": "approvals.scan_sla",
    "schedule": COUNTERSIGN["WAITING_SCAN_SECONDS"],
}
CELERY_BEAT_SCHEDULE["approvals-expire-proposals"] = {
    "task": "approvals.expire_proposals",
    "schedule": COUNTERSIGN["WAITING_SCAN_SECONDS"],
}

# Notices (approvals/notifying): delivered by a worker to the workflow file's channels and to people's
# email, each delivery tried NOTICE_MAX_ATTEMPTS times, waiting NOTICE_RETRY_SECONDS, then twice that,
# and so on (at most an hour). Beat sweeps what is due every NOTICE_SWEEP_SECONDS, records the digest of
# pending work at most once per workflow every NOTICE_DIGEST_MINUTES (and tells conflicts at most as
# often), and looks for overrides ending within ten minutes every NOTICE_POLL_SECONDS.
COUNTERSIGN.update(
    {
        name: _env_number(f"COUNTERSIGN_{name}", default)
        for name, default in {
            "NOTICE_MAX_ATTEMPTS": 5,
            "NOTICE_RETRY_SECONDS": 30,
            "NOTICE_CLAIM_SECONDS": 300,
            "NOTICE_SWEEP_SECONDS": 30,
            "NOTICE_POLL_SECONDS": 60,
            "NOTICE_DIGEST_MINUTES": 15,
            "NOTICE_SOFT_TIME_LIMIT_SECONDS": 240,
        }.items()
    }
)
CELERY_BEAT_SCHEDULE["approvals-notice-sweeper"] = {
    "task": "approvals.sweep_notices",
    "schedule": COUNTERSIGN["NOTICE_SWEEP_SECONDS"],
}
CELERY_BEAT_SCHEDULE["approvals-pending-digests"] = {
    "task": "approvals.record_pending_digests",
    "schedule": COUNTERSIGN["NOTICE_POLL_SECONDS"],
}
CELERY_BEAT_SCHEDULE["approvals-expiring-overrides"] = {
    "task": "approvals.notice_expiring_overrides",
    "schedule": COUNTERSIGN["NOTICE_POLL_SECONDS"],
}

# Faults while applying ---------------------------------------------------------------------------
# The apply task's time limits, in seconds. At the soft limit a chunk stops where it is: the write in
# hand rolls back, and it and the rest of the chunk stay approved and are queued again, no attempt
# counted. At the hard limit the worker's pool ends the process, and the chunk's unfinished proposals
# count an attempt each. Celery enforces both only in the prefork pool (production, docker-compose):
# the embedded setup's threads pool (Procfile.embedded) runs its tasks without time limits.
# Celery sends them with each message from the process that queues it: set them alike everywhere.
COUNTERSIGN["APPLY_SOFT_TIME_LIMIT_SECONDS"] = _env_number("COUNTERSIGN_APPLY_SOFT_TIME_LIMIT_SECONDS", 240)
COUNTERSIGN["APPLY_TIME_LIMIT_SECONDS"] = _env_number("COUNTERSIGN_APPLY_TIME_LIMIT_SECONDS", 300)
# PostgreSQL only: a worker process's database sessions give up waiting for a lock after
# DB_LOCK_TIMEOUT_MS and on a statement after DB_STATEMENT_TIMEOUT_MS (0: never), set when the worker
# starts (config/celery.py). A write held up that way is tried again shortly, no attempt counted, and
# the worker goes on with the rest of its chunk meanwhile. Web requests keep the server's defaults.
COUNTERSIGN["DB_LOCK_TIMEOUT_MS"] = int(_env_number("COUNTERSIGN_DB_LOCK_TIMEOUT_MS", 5000))
COUNTERSIGN["DB_STATEMENT_TIMEOUT_MS"] = int(_env_number("COUNTERSIGN_DB_STATEMENT_TIMEOUT_MS", 120_000))
