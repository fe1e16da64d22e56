"""The workflow file under the two-owner rule: `load_workflows` proposes its retention changes in the
name of the person loading it (--user), and they wait for the other owner unless already
countersigned (--countersigned-by)."""

from datetime import timedelta
from io import StringIO

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from approvals.models import RetentionChange, RetentionChangeStatus, RetentionRule, Workflow
from approvals.retention.services import retention_change_countersign, retention_change_propose
from audit.models import AuditEvent
from tests.helpers.factories import ArtifactFactory, UserFactory


@pytest.fixture
def owner(db):
    return UserFactory(username="owner", first_name="Morgan", last_name="Hale")


@pytest.fixture
def security(db):
    return UserFactory(username="security", first_name="Sasha", last_name="Iyer")


def _file(tmp_path, **changes):
    workflow = {
        "slug": "refund-notes",
        "name": "Refund notes",
        "owner": "owner",
        "retention_co_owner": "security",
        "lane": "write",
        "approvers": "support-leads",
        "actions": ["update"],
        "fields": {"order": {"refund_status": "suggest"}},
        "retention": {"prompt": {"live": "7d"}, "output": {"live": "30d"}},
        **changes,
    }
    path = tmp_path / "workflows.yaml"
    path.write_text(yaml.safe_dump({"workflows": [workflow]}))
    return str(path)


def _load(path, *options):
    out = StringIO()
    call_command("load_workflows", path, *options, stdout=out)
    return out.getvalue()


def _rule(kind="prompt"):
    return RetentionRule.objects.filter(workflow__slug="refund-notes", kind=kind, bucket="live").first()


@pytest.fixture
def loaded(owner, security, tmp_path):
    """refund-notes as first loaded, with a prompt kept under its 7d rule."""
    _load(_file(tmp_path))
    return ArtifactFactory.create(rule=_rule())


def test_a_new_workflow_starts_with_the_rules_of_its_file(owner, security, tmp_path):
    output = _load(_file(tmp_path))
    assert "created: refund-notes" in output
    assert _rule().window == timedelta(days=7)
    assert _rule("output").window == timedelta(days=30)
    assert not RetentionChange.objects.exists()
    first = AuditEvent.objects.filter(action="retention.changed", field="prompt/live").get()
    assert first.details["written_as"] == "a first rule of a new workflow: nothing was kept before"


def test_a_changed_window_waits_for_the_other_owner(loaded, owner, security, tmp_path):
    output = _load(_file(tmp_path, retention={"prompt": {"live": "1h"}, "output": {"live": "30d"}}), "--user", "owner")

    assert "updated: refund-notes" in output
    assert (
        "retention change waiting for its second owner: refund-notes prompt/live: 7d → 1h, proposed by owner, "
        "waiting for Sasha Iyer" in output
    )
    assert _rule().window == timedelta(days=7)
    loaded.refresh_from_db()
    assert loaded.expires_at == loaded.created_at + timedelta(days=7)
    change = RetentionChange.objects.get()
    assert (change.status, change.source, change.proposed_by) == (RetentionChangeStatus.PENDING, "file", owner)
    proposed = AuditEvent.objects.get(action="retention.change_proposed")
    assert proposed.actor_label == "owner"
    assert proposed.details["source"] == "file"
    assert (
        not AuditEvent.objects.filter(action="retention.changed", field="prompt/live")
        .exclude(details__has_key="written_as")
        .exists()
    )

    retention_change_countersign(change=change, user=security)
    assert _rule().window == timedelta(hours=1)
    loaded.refresh_from_db()
    assert loaded.expires_at == loaded.created_at + timedelta(hours=1)


def test_loading_the_same_file_twice_proposes_nothing_more(loaded, owner, tmp_path):
    path = _file(tmp_path, retention={"prompt": {"live": "1h"}, "output": {"live": "30d"}})
    _load(path, "--user", "owner")
    events = AuditEvent.objects.count()

    output = _load(path, "--user", "owner")

    assert "unchanged: refund-notes" in output
    assert "refund-notes prompt/live: 7d → 1h, proposed by owner, waiting for Sasha Iyer" in output
    assert RetentionChange.objects.count() == 1
    assert AuditEvent.objects.count() == events


def test_a_later_load_countersigned_by_the_other_owner_carries_the_change_out(loaded, owner, tmp_path):
    path = _file(tmp_path, retention={"prompt": {"live": "1h"}, "output": {"live": "30d"}})
    _load(path, "--user", "owner")

    output = _load(path, "--user", "owner", "--countersigned-by", "security")

    assert "waiting for" not in output
    assert _rule().window == timedelta(hours=1)
    change = RetentionChange.objects.get()
    assert change.status == RetentionChangeStatus.APPLIED
    event = AuditEvent.objects.get(action="retention.changed", details__change_id=change.pk)
    assert (event.details["proposed_by"], event.details["countersigned_by"]) == ("owner", "security")


def test_a_countersigned_file_change_takes_effect_at_once_naming_both(loaded, owner, security, tmp_path):
    path = _file(tmp_path, retention={"prompt": {"live": "1h"}, "output": {"live": "30d"}})

    output = _load(path, "--user", "owner", "--countersigned-by", "security")

    assert "updated: refund-notes" in output and "waiting for" not in output
    assert _rule().window == timedelta(hours=1)
    loaded.refresh_from_db()
    assert loaded.expires_at == loaded.created_at + timedelta(hours=1)
    change = RetentionChange.objects.get()
    assert (change.status, change.proposed_by, change.countersigned_by) == (
        RetentionChangeStatus.APPLIED,
        owner,
        security,
    )
    event = AuditEvent.objects.get(action="retention.changed", details__change_id=change.pk)
    assert event.actor_label == "owner"
    assert event.approver_label == "Sasha Iyer"
    assert event.old_value == {"window": "7d", "owner": "owner"}
    assert event.new_value == {"window": "1h", "owner": "owner"}
    assert (event.details["proposed_by"], event.details["countersigned_by"]) == ("owner", "security")
    assert event.details["artifacts_shortened"] == 1
    assert _load(path, "--user", "owner", "--countersigned-by", "security").strip() == "unchanged: refund-notes"


def test_a_changed_window_without_a_named_loader_loads_nothing(loaded, tmp_path):
    shorter = {"prompt": {"live": "1h"}, "output": {"live": "30d"}}
    path = _file(tmp_path, name="Refund notes, renamed", retention=shorter)
    with pytest.raises(CommandError, match="retention.prompt.live: name who loads the file with --user"):
        _load(path)
    assert Workflow.objects.get().name == "Refund notes"
    assert _rule().window == timedelta(days=7)
    assert not RetentionChange.objects.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--user", "lead"], "--user lead: only the owners of refund-notes's retention rules"),
        (
            ["--user", "owner", "--countersigned-by", "owner"],
            "--countersigned-by owner: you proposed this change",
        ),
        (
            ["--user", "owner", "--countersigned-by", "lead"],
            "--countersigned-by lead: only the owners of refund-notes's retention rules",
        ),
        (["--user", "nobody"], "--user: no active user 'nobody'"),
    ],
)
def test_only_the_two_owners_change_rules_from_the_file(loaded, tmp_path, options, message):
    UserFactory(username="lead")
    path = _file(tmp_path, retention={"prompt": {"live": "1h"}, "output": {"live": "30d"}})
    with pytest.raises(CommandError, match=message):
        _load(path, *options)
    assert _rule().window == timedelta(days=7)
    assert not RetentionChange.objects.exists()


def test_a_rule_the_file_adds_or_removes_waits_too(loaded, owner, security, tmp_path):
    path = _file(tmp_path, retention={"prompt": {"live": "7d"}, "error_log": {"live": "14d"}})
    output = _load(path, "--user", "security")
    assert "refund-notes error_log/live: no rule → 14d, proposed by security, waiting for Morgan Hale" in output
    assert "refund-notes output/live: 30d → no rule, proposed by security, waiting for Morgan Hale" in output
    assert _rule("error_log") is None
    output_rule = _rule("output")
    assert output_rule is not None
    stored = ArtifactFactory.create(rule=output_rule)

    _load(path, "--user", "security", "--countersigned-by", "owner")

    assert _rule("error_log").window == timedelta(days=14)
    assert _rule("output") is None
    stored.refresh_from_db()
    assert stored.expires_at == stored.created_at <= timezone.now()
    removed = AuditEvent.objects.filter(action="retention.changed", field="output/live").latest("id")
    assert removed.new_value is None
    assert removed.details["artifacts_shortened"] == 1
    assert removed.details["countersigned_by"] == "owner"


def test_a_newer_file_replaces_what_an_earlier_file_proposed(loaded, owner, tmp_path):
    _load(_file(tmp_path, retention={"prompt": {"live": "1h"}, "output": {"live": "30d"}}), "--user", "owner")
    _load(_file(tmp_path, retention={"prompt": {"live": "2h"}, "output": {"live": "30d"}}), "--user", "owner")
    assert list(RetentionChange.objects.order_by("pk").values_list("window_after", "status")) == [
        (timedelta(hours=1), RetentionChangeStatus.WITHDRAWN),
        (timedelta(hours=2), RetentionChangeStatus.PENDING),
    ]
    # Back to the rule in effect: nothing waits any more, and no --user is needed for that.
    _load(_file(tmp_path))
    assert not RetentionChange.objects.filter(status=RetentionChangeStatus.PENDING).exists()
    assert AuditEvent.objects.filter(action="retention.change_withdrawn").count() == 2
    assert _rule().window == timedelta(days=7)


def test_a_change_waiting_on_the_page_is_decided_there_first(loaded, owner, security, tmp_path):
    retention_change_propose(rule=_rule(), user=security, window=timedelta(days=3))
    path = _file(tmp_path, retention={"prompt": {"live": "1h"}, "output": {"live": "30d"}})
    with pytest.raises(CommandError, match="a change to 3d proposed on the retention page by Sasha Iyer is waiting"):
        _load(path, "--user", "owner")
    # A file that leaves the rule as it is leaves the page's change waiting.
    assert "unchanged: refund-notes" in _load(_file(tmp_path))
    assert RetentionChange.objects.get().status == RetentionChangeStatus.PENDING


def test_without_a_second_owner_a_file_change_waits_until_one_is_named(owner, security, tmp_path):
    _load(_file(tmp_path, retention_co_owner=None))
    path = _file(tmp_path, retention_co_owner=None, retention={"prompt": {"live": "1h"}, "output": {"live": "30d"}})
    output = _load(path, "--user", "owner")
    assert "waiting for a second owner to be named (retention_co_owner in the workflow file)" in output
    with pytest.raises(CommandError, match="names no second owner of its retention rules"):
        _load(path, "--user", "owner", "--countersigned-by", "security")
    assert _rule().window == timedelta(days=7)

    named = _file(tmp_path, retention={"prompt": {"live": "1h"}, "output": {"live": "30d"}})
    _load(named, "--user", "owner", "--countersigned-by", "security")
    assert _rule().window == timedelta(hours=1)


def test_a_new_rules_owner_takes_over_the_rules_without_changing_a_window(loaded, owner, tmp_path):
    UserFactory(username="dpo")
    _load(_file(tmp_path, retention_owner="dpo"))
    assert set(RetentionRule.objects.values_list("owner__username", flat=True)) == {"dpo"}
    assert _rule().window == timedelta(days=7)
    assert not RetentionChange.objects.exists()
