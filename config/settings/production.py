"""Production: PostgreSQL, Redis, a real secret. Refuses to start otherwise."""

import os

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import (
    AUDIT_ANCHOR_KEY,
    DEBUG,
    DEV_AUDIT_ANCHOR_KEY,
    DEV_SECRET_KEY,
    SECRET_KEY,
    SMTP_EMAIL_BACKEND,
    mailers,
)

if DEBUG:
    raise ImproperlyConfigured("DEBUG must be off in production (unset DEBUG).")
if not SECRET_KEY or SECRET_KEY == DEV_SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set to a secret of your own in production.")
if not AUDIT_ANCHOR_KEY or AUDIT_ANCHOR_KEY in (DEV_AUDIT_ANCHOR_KEY, SECRET_KEY):
    raise ImproperlyConfigured(
        "AUDIT_ANCHOR_KEY must be set to a secret of your own in production, other than SECRET_KEY."
    )

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True


def _switch(name: str, default: bool) -> bool:
    """A setting on by default that only an explicit value (false, 0, no, off) turns off, or the reverse."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}.")


# HTTPS only: plain HTTP is redirected, and browsers are told to use HTTPS for a year. Both stay on
# unless switched off explicitly (SECURE_SSL_REDIRECT=false, SECURE_HSTS_SECONDS=0). The health
# check and metrics answer over plain HTTP too, for load balancers and monitors inside the network.
SECURE_SSL_REDIRECT = _switch("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^api/v1/health$", r"^metrics$"]
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _switch("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = _switch("SECURE_HSTS_PRELOAD", True)

# Behind a proxy that ends TLS, the proxy's X-Forwarded-Proto says whether the browser used HTTPS.
# Trusted only when BEHIND_TLS_PROXY says such a proxy is there: otherwise any client could send it.
if _switch("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Mail goes out over SMTP unless EMAIL_BACKEND names another backend.
MAILERS = mailers(SMTP_EMAIL_BACKEND)
