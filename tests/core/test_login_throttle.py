"""Sign-in throttling: repeated failures pause sign-in for a user name from an address, without
hashing the password, and the trail keeps one event per lockout."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from tests.helpers.factories import UserFactory

pytestmark = pytest.mark.django_db


def _sign_in(client, username: str, password: str, address: str = "10.0.0.7"):  # type: ignore[no-untyped-def]
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The user names whose password was checked (hashed), in order."""
    checked: list[str] = []
    original = AbstractBaseUser.check_password

    def counting(self: AbstractBaseUser, raw_password: str | None) -> bool:
        checked.append(self.get_username())
        return original(self, raw_password)

    monkeypatch.setattr(AbstractBaseUser, "check_password", counting)
    return checked


def test_a_failed_sign_in_says_so_and_leaves_no_trail_row(client):
    UserFactory(username="lead", password="lead")
    response = _sign_in(client, "lead", "guess")
    assert response.status_code == 200
    assert "didn't match" in response.content.decode()
    assert not AuditEvent.objects.filter(action__startswith="login.").exists()


def test_after_the_limit_sign_in_is_paused_without_checking_the_password(client, hashed):
    UserFactory(username="lead", password="lead")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, "lead", "guess")
    assert len(hashed) == settings.AXES_FAILURE_LIMIT

    response = _sign_in(client, "lead", "lead")  # the right password, too late

    assert response.status_code == 429
    page = response.content.decode()
    assert "Sign-in paused" in page
    assert f"{settings.AXES_FAILURE_LIMIT} failed sign-ins" in page
    assert "15 minutes" in page
    assert len(hashed) == settings.AXES_FAILURE_LIMIT  # the right password was never checked
    assert "_auth_user_id" not in client.session


def test_the_trail_gets_one_event_per_lockout_however_many_attempts(client):
    UserFactory(username="lead", password="lead")
    for _ in range(settings.AXES_FAILURE_LIMIT + 10):
        _sign_in(client, "lead", "guess")

    events = AuditEvent.objects.filter(action="login.locked_out")
    assert events.count() == 1
    assert events.get().details == {"username": "lead", "ip": "10.0.0.7"}


def test_the_lockout_ends_after_the_cool_off_and_is_recorded_again_next_time(client):
    UserFactory(username="lead", password="lead")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, "lead", "guess")
    with time_machine.travel(timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(seconds=5)):
        response = _sign_in(client, "lead", "lead")
        assert response.status_code == 302
        client.logout()
        for _ in range(settings.AXES_FAILURE_LIMIT):
            _sign_in(client, "lead", "guess")
    assert AuditEvent.objects.filter(action="login.locked_out").count() == 2


def test_a_lockout_is_per_user_name_and_address(client):
    UserFactory(username="lead", password="lead")
    UserFactory(username="ops", password="ops")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _sign_in(client, "lead", "guess", address="10.0.0.7")

    assert _sign_in(client, "lead", "lead", address="10.0.0.8").status_code == 302
    client.logout()
    assert _sign_in(client, "ops", "ops", address="10.0.0.7").status_code == 302


def test_a_session_lasts_at_most_twelve_hours(client):
    UserFactory(username="lead", password="lead")
    _sign_in(client, "lead", "lead")
    assert settings.SESSION_COOKIE_AGE <= 12 * 3600
    assert client.session.get_expiry_age() <= 12 * 3600
