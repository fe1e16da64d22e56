"""A loopback JSON webhook for Apprise's `json://` channels, and workflows that name it."""

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.helpers.receiver import Receiver

EVERY_EVENT = [
    "pending_digest",
    "sla_breach",
    "stop_engaged",
    "stop_released",
    "circuit_tripped",
    "override_granted",
    "override_expiring",
    "conflict",
    "undo_finished",
    "store_unreachable",
    "audit_broken",
]
CHANNEL = "${TEAM_CHAT_URL}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def titles(receiver: Receiver) -> list[str]:
    """The titles of the JSON notices the receiver was sent (Apprise's json:// body), in order."""
    return [json.loads(item.body)["title"] for item in receiver.received]


def messages(receiver: Receiver) -> list[tuple[str, str]]:
    """Each JSON notice the receiver was sent, as its title and its message, in order."""
    return [(json.loads(item.body)["title"], json.loads(item.body)["message"]) for item in receiver.received]


@contextmanager
def chat(monkeypatch: pytest.MonkeyPatch, statuses: list[int] | None = None) -> Iterator[Receiver]:
    """A team chat's webhook on loopback, its Apprise URL in TEAM_CHAT_URL as the file's `${TEAM_CHAT_URL}`."""
    port = free_port()
    monkeypatch.setenv("TEAM_CHAT_URL", f"json://127.0.0.1:{port}/hook")
    with Receiver(port, statuses=statuses) as receiver:
        yield receiver


def notify(events: list[str] | None = None, channel: str = CHANNEL) -> list[dict[str, Any]]:
    return [{"channel": channel, "events": events or EVERY_EVENT}]
