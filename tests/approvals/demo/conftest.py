"""The demo is loaded only where DEBUG is on, as `make run` has it; the test settings turn it off."""

import pytest


@pytest.fixture(autouse=True)
def _debug_on(settings):  # type: ignore[no-untyped-def]
    settings.DEBUG = True
