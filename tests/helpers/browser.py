"""Browser contexts that leave the live server idle when they close."""

import contextlib
import time
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def settled_context(browser: Any, base_url: str, **options: Any) -> Iterator[Any]:
    """A browser context that, on leaving, lets the live server finish what it was asked before closing.

    A request still running on the live server while the test's database is truncated deadlocks with the
    truncation, so new requests are refused and the ones already sent are waited for.
    """
    context = browser.new_context(viewport={"width": 1366, "height": 768}, base_url=base_url, **options)
    in_flight: set[Any] = set()

    def sent(request: Any) -> None:
        in_flight.add(request)

    def done(request: Any) -> None:
        in_flight.discard(request)

    context.on("request", sent)
    context.on("requestfinished", done)
    context.on("requestfailed", done)
    try:
        yield context
    finally:
        context.route("**/*", lambda route: route.abort())
        deadline = time.monotonic() + 10
        while in_flight and context.pages and time.monotonic() < deadline:
            context.pages[0].wait_for_timeout(25)
        context.close()
