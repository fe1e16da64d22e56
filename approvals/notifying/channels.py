"""The channels a workflow file names for its events: Apprise URLs (email, Slack, Microsoft Teams,
JSON webhooks and the rest Apprise speaks), or `${NAME}` to read the URL from the environment when a
notice is sent, so a channel's secrets are never written in the file, the database or a page."""

import hashlib
import logging
from collections.abc import Iterable

import apprise
from django.conf import settings

from approvals.models import Workflow
from records.store.placeholders import MissingVariable, expand, placeholders


class ChannelFailed(Exception):
    """A channel did not take a notice; `retry` says whether trying again later could help."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


def channels_wanting(*, workflows: Iterable[Workflow], event: str) -> list[str]:
    """The channels, as the files write them, that ask for `event`: once each, in the files' order."""
    found: dict[str, None] = {}
    for workflow in workflows:
        for entry in workflow.notify or []:
            if event in entry.get("events", []):
                found.setdefault(str(entry["channel"]), None)
    return list(found)


def channel_label(channel: str) -> str:
    """What pages and delivery records call a channel: `${NAME}` as written, or the URL with Apprise's
    privacy mask over its tokens and passwords (and a short fingerprint, so two look-alikes stay two)."""
    if placeholders(channel):
        return channel[:300]
    plugin = apprise.Apprise.instantiate(channel)
    shown = plugin.url(privacy=True).split("?", 1)[0] if plugin else channel.split("://", 1)[0] + "://…"
    fingerprint = hashlib.sha256(channel.encode()).hexdigest()[:8]
    return f"{shown[:280]} #{fingerprint}"


def channel_send(*, channel: str, subject: str, body: str) -> None:
    """Send one notice to one channel now, its URL read from the environment. Raises ChannelFailed."""
    try:
        url = expand(channel)
    except MissingVariable as missing:
        raise ChannelFailed(f"{missing}; set it to the channel's Apprise URL") from None
    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        raise ChannelFailed(f"{channel_label(channel)} is not a URL Apprise can send to", retry=False)
    timeout = float(settings.COUNTERSIGN["HTTP_TIMEOUT_SECONDS"])
    plugin.socket_connect_timeout = plugin.socket_read_timeout = timeout
    sender = apprise.Apprise()
    sender.add(plugin)
    with apprise.LogCapture(level=logging.WARNING) as logs:
        sent = sender.notify(title=subject, body=body)
    if not sent:
        said = " ".join(line.split(" - ", 2)[-1] for line in logs.getvalue().splitlines() if line.strip())
        raise ChannelFailed(said[:2000] or f"{channel_label(channel)} did not take the notice")
