import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _import_production(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    return subprocess.run(
        [sys.executable, "-c", "import config.settings.production"],
        cwd=ROOT,
        env={**clean, **env},
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
