"""A broker that is down, as the web side sees it: a closed port, or a black hole (a socket that
accepts connections and never answers), and the web side's Celery app pointed at one.

The web side runs in the test process with a Celery app like the project's (the same settings:
routes, publish timeout and retries, Redis socket timeouts) whose broker is one of these addresses.
"""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from celery import Celery

from config.celery import app as project_app


@contextmanager
def closed_port() -> Iterator[str]:
    """A broker address where nothing listens: every connection is refused at once."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def black_hole(*, gives_up_after: float = 20) -> Iterator[str]:
    """A broker address that accepts TCP connections (the kernel completes them) and never answers.

    It closes itself after `gives_up_after` seconds, so a publish without a timeout fails the test
    after that long instead of hanging it.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    timer = threading.Timer(gives_up_after, listener.close)
    timer.start()
    try:
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
    finally:
        timer.cancel()
        listener.close()


BROKERS = {"closed port": closed_port, "black hole": black_hole}


@contextmanager
def web_broker_at(url: str) -> Iterator[None]:
    """Requests in this process publish to `url`, with every other Celery setting of the project."""
    app = Celery("countersign", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.update(broker_url=url)
    app.set_current()
    try:
        yield
    finally:
        project_app.set_current()
