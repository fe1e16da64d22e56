"""Sign-in throttling, on top of django-axes."""

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class SignInThrottle(AxesStandaloneBackend):
    """django-axes' check, for sign-ins that come with a request (every sign-in over the web).

    A call without one (a management command, a shell, the test client's `login`) has no address to
    count failures against; it goes straight to the password backend instead of being refused.
    """

    def authenticate(
        self, request: HttpRequest | None, username: str | None = None, password: str | None = None, **kwargs: Any
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)
