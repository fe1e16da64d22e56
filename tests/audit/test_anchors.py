"""Anchors outside the database catch what a database owner can do to the chain unnoticed by it."""

import json
import socket
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError

from audit.anchors import anchor_write, anchors_verify
from audit.models import AuditEvent
from audit.services import Actor, audit_record, audit_verify_chain, event_hash
from tests.helpers.receiver import Receiver


@pytest.fixture
def anchor_file(settings, tmp_path) -> Path:  # type: ignore[no-untyped-def]
    settings.AUDIT_ANCHOR_FILE = str(tmp_path / "anchors" / "audit-anchors.jsonl")
    settings.AUDIT_ANCHOR_SINKS = "file"
    settings.AUDIT_ANCHOR_KEY = "anchor-key-for-these-tests"
    return Path(settings.AUDIT_ANCHOR_FILE)


def _events(count: int, start: int = 0) -> list[AuditEvent]:
    return [
        audit_record(action="workflow.changed", actor=Actor.system("test"), workflow_slug=f"w{start + n}")
        for n in range(count)
    ]


def _recompute_from(event_id: int) -> None:
    """What an owner does after editing an event: relink and rehash every event from it on."""
    previous = AuditEvent.objects.filter(id__lt=event_id).order_by("-id").values_list("hash", flat=True).first()
    for event in AuditEvent.objects.filter(id__gte=event_id).order_by("id"):
        event.prev_hash = previous or "0" * 64
        event.hash = event_hash(event)
        AuditEvent.objects.filter(pk=event.pk).update(prev_hash=event.prev_hash, hash=event.hash)
        previous = event.hash


def test_an_anchor_signs_the_head_and_is_appended_once_per_move(db, anchor_file):
    events = _events(3)
    first = anchor_write()
    assert first is not None
    assert (first.event_id, first.hash, first.count) == (events[-1].pk, events[-1].hash, 3)
    assert anchor_write() is None  # the head has not moved
    _events(2, start=3)
    second = anchor_write()
    assert second is not None and second.count == 5
    lines = [json.loads(line) for line in anchor_file.read_text().splitlines()]
    assert [line["event_id"] for line in lines] == [events[-1].pk, second.event_id]
    assert set(lines[0]) == {"event_id", "hash", "count", "at", "signature"}


def test_an_untampered_chain_passes_every_anchor(db, anchor_file, capsys):
    _events(3)
    anchor_write()
    _events(2, start=3)
    anchor_write()
    call_command("verify_audit", "--anchors")
    out = capsys.readouterr().out
    assert "Audit chain verified: 5 event(s)" in out
    assert "Anchors verified: 2 anchor(s) match the chain." in out


def test_an_edited_event_with_the_chain_recomputed_is_caught(db, anchor_file, audit_guard_bypassed):
    events = _events(4)
    anchor_write()
    AuditEvent.objects.filter(pk=events[1].pk).update(workflow_slug="rewritten")
    _recompute_from(events[1].pk)
    assert audit_verify_chain() == (4, None)  # the chain alone no longer notices
    call_command("verify_audit")
    with pytest.raises(
        CommandError,
        match=r"1 of 1 anchor\(s\) broken; the first: anchor on line 1 .*"
        rf"event #{events[-1].pk} no longer has the anchored hash \(events were edited",
    ):
        call_command("verify_audit", "--anchors")


def test_the_newest_events_cut_off_are_caught(db, anchor_file, audit_guard_bypassed):
    events = _events(3)
    anchor_write()
    AuditEvent.objects.filter(pk=events[-1].pk).delete()
    assert audit_verify_chain() == (2, None)
    with pytest.raises(CommandError, match=rf"event #{events[-1].pk}, which no longer exists \(the newest events"):
        call_command("verify_audit", "--anchors")


def test_an_event_removed_from_the_middle_with_the_chain_recomputed_is_caught(db, anchor_file, audit_guard_bypassed):
    events = _events(4)
    anchor_write()
    AuditEvent.objects.filter(pk=events[1].pk).delete()
    _recompute_from(events[2].pk)
    assert audit_verify_chain() == (3, None)
    checked, breaks = anchors_verify()
    assert checked == 1
    assert [b.event_id for b in breaks] == [events[-1].pk]
    assert "no longer has the anchored hash" in breaks[0].problem


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda line: {**line, "count": line["count"] - 1}, "its signature does not match (the anchor was edited)"),
        (lambda line: {**line, "hash": "f" * 64}, "its signature does not match (the anchor was edited)"),
        (lambda line: "not json at all", "the line is not an anchor"),
    ],
)
def test_an_edited_anchor_line_is_caught(db, anchor_file, edit, problem):
    _events(2)
    anchor_write()
    _events(1, start=2)
    anchor_write()
    lines = anchor_file.read_text().splitlines()
    edited = edit(json.loads(lines[0]))
    lines[0] = edited if isinstance(edited, str) else json.dumps(edited)
    anchor_file.write_text("\n".join(lines) + "\n")
    with pytest.raises(CommandError, match=rf"1 of 2 anchor\(s\) broken; the first: anchor on line 1.*{problem[:20]}"):
        call_command("verify_audit", "--anchors")


def test_an_anchor_signed_with_another_key_is_refused(db, anchor_file, settings):
    _events(1)
    anchor_write()
    settings.AUDIT_ANCHOR_KEY = "some-other-key"
    _, breaks = anchors_verify()
    assert [b.problem for b in breaks] == ["its signature does not match (the anchor was edited)"]


def test_a_missing_anchor_file_fails_the_check(db, anchor_file):
    _events(1)
    with pytest.raises(CommandError, match="no anchor file at"):
        call_command("verify_audit", "--anchors")


def test_an_unknown_sink_is_refused_naming_it(db, anchor_file, settings):
    settings.AUDIT_ANCHOR_SINKS = "file,carrier-pigeon"
    _events(1)
    with pytest.raises(ImproperlyConfigured, match="unknown sink 'carrier-pigeon'"):
        anchor_write()
    assert not anchor_file.exists()


def test_anchors_are_posted_to_the_http_sink_and_sent_to_syslog(db, anchor_file, settings):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as syslog, Receiver(18691) as endpoint:
        syslog.bind(("127.0.0.1", 0))
        syslog.settimeout(5)
        settings.AUDIT_ANCHOR_SINKS = "file,http,syslog"
        settings.AUDIT_ANCHOR_URL = f"{endpoint.url}/anchors"
        settings.AUDIT_ANCHOR_SYSLOG_ADDRESS = f"127.0.0.1:{syslog.getsockname()[1]}"
        events = _events(2)
        anchor = anchor_write()
        datagram = syslog.recv(4096).decode()
    assert anchor is not None
    posted = json.loads(endpoint.received[0].body)
    assert endpoint.received[0].path == "/anchors"
    assert (posted["event_id"], posted["hash"], posted["count"]) == (events[-1].pk, events[-1].hash, 2)
    assert f"countersign-audit-anchor {anchor_file.read_text().strip()}" in datagram


def test_an_unreachable_http_sink_fails_the_run_and_the_next_run_anchors_again(db, anchor_file, settings):
    settings.AUDIT_ANCHOR_SINKS = "file,http"
    settings.AUDIT_ANCHOR_URL = "http://127.0.0.1:18692/anchors"
    _events(1)
    with pytest.raises(OSError):
        anchor_write()
    with Receiver(18692) as endpoint:
        assert anchor_write() is not None
    assert len(endpoint.received) == 1


def test_beat_writes_anchors(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["audit-write-anchor"]
    assert entry["task"] == "audit.write_anchor"
    assert entry["schedule"] <= 60
