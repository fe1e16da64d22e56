import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANCHOR_KEY = "a-real-anchor-key-kept-apart-from-the-secret-key-0987654321"


def _import_production(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "AUDIT_ANCHOR_KEY"}}
    return subprocess.run(
        [sys.executable, "-c", "import config.settings.production"],
        cwd=ROOT,
        env={**clean, "AUDIT_ANCHOR_KEY": ANCHOR_KEY, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "countersign-development-key-never-use-in-production"}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "a-real-secret-of-fifty-characters-or-so-1234567890", "DEBUG": "true"}, "DEBUG must be off"),
        (
            {"SECRET_KEY": "a-real-secret-of-fifty-characters-or-so-1234567890", "AUDIT_ANCHOR_KEY": ""},
            "AUDIT_ANCHOR_KEY",
        ),
        (
            {
                "SECRET_KEY": "a-real-secret-of-fifty-characters-or-so-1234567890",
                "AUDIT_ANCHOR_KEY": "countersign-development-anchor-key-never-use-in-production",
            },
            "AUDIT_ANCHOR_KEY must be set",
        ),
        (
            {
                "SECRET_KEY": "a-real-secret-of-fifty-characters-or-so-1234567890",
                "AUDIT_ANCHOR_KEY": "a-real-secret-of-fifty-characters-or-so-1234567890",
            },
            "other than SECRET_KEY",
        ),
    ],
)
def test_production_refuses_unsafe_settings(env, message):
    result = _import_production(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_starts_with_a_real_secret():
    result = _import_production(SECRET_KEY="a-real-secret-of-fifty-characters-or-so-1234567890")
    assert result.returncode == 0, result.stderr


def test_smtp_mail_is_sent_to_the_configured_host_with_a_timeout():
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("EMAIL_", "COUNTERSIGN_EMAIL"))}
    env = {**clean, "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "mail.internal"}
    script = (
        "import django; django.setup(); from django.core.mail import mailers; m = mailers.default; "
        "print(m.host, m.port, m.timeout)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "config.settings.local", "EMAIL_PORT": "2525"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["mail.internal", "2525", "10.0"]


SECRET = "a-real-secret-of-fifty-characters-or-so-1234567890-abcdefghij"
# What the test run itself sets (the browser tests allow async-unsafe ORM calls) is not a deployment's.
DEPLOY_ENV = (
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "BEHIND_TLS_PROXY",
    "EMAIL_BACKEND",
    "DATABASE_URL",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "AUDIT_ANCHOR_KEY", *DEPLOY_ENV}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={
            **clean,
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "SECRET_KEY": SECRET,
            "AUDIT_ANCHOR_KEY": ANCHOR_KEY,
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def _production_setting(expression: str, **env: str) -> str:
    result = _manage("shell", "--no-imports", "-c", f"from django.conf import settings; print({expression})", **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_production_settings_pass_the_deploy_check_with_warnings_as_failures():
    result = _manage("check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_https_redirect_and_hsts_are_on_unless_switched_off_explicitly():
    assert _production_setting("settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS") == "True 31536000"
    switched_off = _production_setting(
        "settings.SECURE_SSL_REDIRECT, settings.SECURE_HSTS_SECONDS",
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
    )
    assert switched_off == "False 0"
    result = _manage("check", "--deploy", "--fail-level", "WARNING", SECURE_SSL_REDIRECT="false")
    assert result.returncode != 0 and "security.W008" in result.stderr


def test_a_word_that_is_not_true_or_false_is_refused():
    result = _manage("check", SECURE_SSL_REDIRECT="maybe")
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT must be true or false" in result.stderr


def test_the_forwarded_https_header_is_trusted_only_behind_a_tls_proxy():
    assert _production_setting("settings.SECURE_PROXY_SSL_HEADER") == "None"
    behind = _production_setting("settings.SECURE_PROXY_SSL_HEADER", BEHIND_TLS_PROXY="true")
    assert behind == "('HTTP_X_FORWARDED_PROTO', 'https')"


def test_production_mail_goes_out_over_smtp_with_a_timeout():
    assert _production_setting(
        "settings.MAILERS['default']['BACKEND'], settings.MAILERS['default']['OPTIONS']['timeout']"
    ) == ("django.core.mail.backends.smtp.EmailBackend 10.0")
