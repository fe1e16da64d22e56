"""Every change of a person's groups or of their staff and superuser flags is on the trail as
`access.granted` / `access.revoked`, with who made it: the person whose request it was (the admin's
user change form), or the process that ran the code."""

import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse

from audit.models import AuditEvent
from audit.services import audit_verify_chain
from tests.helpers.factories import GroupFactory, UserFactory

PROCESS_PREFIX = "pytest (system user "


@pytest.fixture(autouse=True)
def _started_as_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process is named by the command that started it; a pytest-xdist worker is started as `python -c`,
    so these tests run as `pytest` itself is started, whatever runs them."""
    monkeypatch.setattr(sys, "argv", [str(Path(sys.executable).with_name("pytest"))])


def access_events() -> list[tuple[str, str, str]]:
    """(action, what it says, who did it) for each access event, oldest first."""
    return [
        (event.action, event.reason, event.actor_label)
        for event in AuditEvent.objects.filter(action__startswith="access.").order_by("id")
    ]


def said() -> list[tuple[str, str]]:
    return [(action, reason) for action, reason, _ in access_events()]


@pytest.fixture
def dana(db) -> User:  # type: ignore[no-untyped-def]
    return UserFactory(username="dana")


@pytest.fixture
def leads(db) -> Group:  # type: ignore[no-untyped-def]
    return GroupFactory(name="support-leads")


@pytest.fixture
def ops(db) -> Group:  # type: ignore[no-untyped-def]
    return GroupFactory(name="ops-managers")


def test_joining_and_leaving_groups_through_the_user_is_recorded_once_per_real_change(dana, leads, ops):
    dana.groups.add(leads, ops)
    dana.groups.add(leads)  # already a member: nothing changes
    dana.groups.remove(ops, GroupFactory(name="auditors"))  # not a member of auditors: nothing to lose there
    dana.groups.clear()
    assert said() == [
        ("access.granted", "dana added to group ops-managers"),
        ("access.granted", "dana added to group support-leads"),
        ("access.revoked", "dana removed from group ops-managers"),
        ("access.revoked", "dana removed from group support-leads"),
    ]
    granted = AuditEvent.objects.filter(action="access.granted").order_by("id").first()
    assert granted is not None
    assert (granted.actor_kind, granted.field, granted.old_value, granted.new_value) == (
        "system",
        "groups",
        None,
        "ops-managers",
    )
    assert granted.actor_label.startswith(PROCESS_PREFIX)
    assert granted.details == {
        "user_id": dana.pk,
        "username": "dana",
        "group": "ops-managers",
        "group_id": ops.pk,
        "through": "process",
    }
    assert audit_verify_chain()[1] is None


def test_membership_changed_from_the_group_s_side_and_by_set_is_recorded_too(dana, leads, ops):
    sam = UserFactory(username="sam")
    leads.user_set.add(dana, sam)
    leads.user_set.remove(sam)
    dana.groups.set([ops])
    leads.user_set.set([sam])
    ops.user_set.clear()
    assert said() == [
        ("access.granted", "dana added to group support-leads"),
        ("access.granted", "sam added to group support-leads"),
        ("access.revoked", "sam removed from group support-leads"),
        ("access.revoked", "dana removed from group support-leads"),
        ("access.granted", "dana added to group ops-managers"),
        ("access.granted", "sam added to group support-leads"),
        ("access.revoked", "dana removed from group ops-managers"),
    ]


def test_deleting_a_group_takes_it_from_each_member(dana, leads):
    leads.user_set.add(dana)
    leads.delete()
    assert said()[-1] == ("access.revoked", "dana removed from group support-leads as it was deleted")


def test_staff_and_superuser_flags_are_recorded_when_created_with_them_and_when_changed(db):
    User.objects.create_superuser(username="root", password="a long passphrase")
    plain = User.objects.create_user(username="plain")
    plain.is_staff = True
    plain.save()
    plain.save()  # no change: nothing recorded
    plain.is_staff = False
    plain.is_superuser = True
    plain.save(update_fields=["is_staff", "is_superuser"])
    plain.is_superuser = False
    plain.save(update_fields=["last_login"])  # the flag is not saved, so nothing changed
    assert said() == [
        ("access.granted", "root made staff"),
        ("access.granted", "root made superuser"),
        ("access.granted", "plain made staff"),
        ("access.revoked", "plain no longer staff"),
        ("access.granted", "plain made superuser"),
    ]
    revoked = AuditEvent.objects.get(action="access.revoked")
    assert (revoked.field, revoked.old_value, revoked.new_value) == ("is_staff", True, False)
    assert revoked.details["through"] == "process"


def test_the_admin_s_user_change_form_records_who_changed_what(client, dana, leads, ops):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    dana.groups.add(ops)
    last_before = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first()
    client.force_login(root)
    change = reverse("admin:auth_user_change", args=[dana.pk])
    form = {
        "username": "dana",
        "first_name": dana.first_name,
        "last_name": dana.last_name,
        "email": "",
        "is_active": "on",
        "is_staff": "on",
        "groups": [leads.pk],
        "date_joined_0": "2026-11-27",
        "date_joined_1": "09:00:00",
    }
    response = client.post(change, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    events = list(AuditEvent.objects.filter(pk__gt=last_before).order_by("id"))
    assert [(e.action, e.reason) for e in events] == [
        ("access.granted", "dana made staff"),
        ("access.revoked", "dana removed from group ops-managers"),
        ("access.granted", "dana added to group support-leads"),
    ]
    for event in events:
        assert (event.actor_kind, event.actor_label, event.actor_id) == ("user", "root", str(root.pk))
        assert event.details["through"] == "request"
        assert event.details["path"] == change

    client.post(change, {**form, "is_staff": "", "groups": []})
    assert said()[-2:] == [
        ("access.revoked", "dana no longer staff"),
        ("access.revoked", "dana removed from group support-leads"),
    ]
    # Once the request is over, a change made by code is the process's again.
    dana.groups.add(ops)
    assert access_events()[-1][2].startswith(PROCESS_PREFIX)
