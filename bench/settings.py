"""Settings for benchmarks: the production-like app (DEBUG off, PostgreSQL from DATABASE_URL) plus a bare
view at /bench/bare used as the baseline for request latency. Never used outside bench/."""

from config.settings.base import *  # noqa: F403

DEBUG = False
ROOT_URLCONF = "bench.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "ERROR"},
}
