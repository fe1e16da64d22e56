"""Who was given or lost access, and who did it. Adding a person to a group or taking them out of one
(from either side: `user.groups` or `group.user_set`; add, remove, set, clear, or deleting the group),
and making them staff or superuser or no longer (creating a user with a flag counts too), appends
`access.granted` or `access.revoked` to the trail, from the admin or from code alike.

The actor is the person whose request made the change, read from `ActingUserMiddleware`; outside a
request (a command, a worker, a shell) it is the process itself. Each event's details say which
(`through`: "request" with its path, or "process"). Like every model signal, these do not see a bulk
`update()` of users or rows written straight into the membership table.
"""

import getpass
import sys
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_save, pre_delete, pre_save
from django.http import HttpRequest, HttpResponse

from audit.services import Actor, EventData, audit_record_many

FLAGS = {"is_staff": "staff", "is_superuser": "superuser"}
_current_request: ContextVar[HttpRequest | None] = ContextVar("audit_current_request", default=None)
# Set on the instance between the `pre_` and `post_` signals of one change: what it held before.
_MEMBERSHIPS_BEFORE = "_audit_memberships_before"
_FLAGS_BEFORE = "_audit_flags_before"


class ActingUserMiddleware:
    """Remembers whose request is being served, so that a change of access made while serving it
    names that person. Place it after the authentication middleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current_request.set(request)
        try:
            return self.get_response(request)
        finally:
            _current_request.reset(token)


def _process_label() -> str:
    argv = sys.argv or ["python"]
    started = Path(argv[0])
    # `python -m celery` (or pytest) runs the package's __main__.py: name the package.
    program = started.parent.name if started.name == "__main__.py" else started.name
    if program == "manage.py" and len(argv) > 1:
        program = f"manage.py {argv[1]}"
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no login name in this environment (a container's numeric user)
        login = "unknown"
    return f"{program} (system user {login})"[:200]


def _who() -> tuple[Actor, dict[str, str]]:
    request = _current_request.get()
    user = getattr(request, "user", None)
    if request is not None and user is not None and user.is_authenticated:
        return Actor.user(user), {"through": "request", "path": request.path[:200]}
    return Actor.system(_process_label()), {"through": "process"}


def _record(changes: list[tuple[str, str, int, str, dict[str, Any]]]) -> None:
    """Append one event per (action, reason, user id, username, what changed), all by the same actor."""
    if not changes:
        return
    actor, through = _who()
    audit_record_many(
        EventData(
            action=action,
            actor=actor,
            reason=reason,
            details={"user_id": user_id, "username": username, **what, **through},
            **_values(action, what),
        )
        for action, reason, user_id, username, what in changes
    )


def _values(action: str, what: dict[str, Any]) -> dict[str, Any]:
    """The event's field and its value before and after: the group joined or left, or the flag."""
    if "group" in what:
        held = {"old_value": what["group"]} if action == "access.revoked" else {"new_value": what["group"]}
        return {"field": "groups", **held}
    granted = action == "access.granted"
    return {"field": what["flag"], "old_value": not granted, "new_value": granted}


# Groups ------------------------------------------------------------------------------------------


def _pairs(instance: Any, reverse: bool, pk_set: set[int] | None) -> set[tuple[int, int]]:
    """The (user id, group id) memberships among those a change names that exist now."""
    through = get_user_model().groups.through
    memberships = (
        through.objects.filter(group_id=instance.pk) if reverse else through.objects.filter(user_id=instance.pk)
    )
    if pk_set is not None:
        memberships = memberships.filter(**{"user_id__in" if reverse else "group_id__in": pk_set})
    return set(memberships.values_list("user_id", "group_id"))


_MEMBERSHIP_WORDS = {"access.granted": "added to group {group}", "access.revoked": "removed from group {group}"}


def _record_memberships(action: str, pairs: set[tuple[int, int]], *, deleted_group: bool = False) -> None:
    if not pairs:
        return
    user_model = get_user_model()
    usernames = dict(
        user_model._default_manager.filter(pk__in={user for user, _ in pairs}).values_list(
            "pk", user_model.USERNAME_FIELD
        )
    )
    groups = dict(Group.objects.filter(pk__in={group for _, group in pairs}).values_list("pk", "name"))
    how = "removed from group {group} as it was deleted" if deleted_group else _MEMBERSHIP_WORDS[action]
    _record(
        [
            (
                action,
                f"{usernames[user]} {how.format(group=groups[group])}",
                user,
                usernames[user],
                {"group": groups[group], "group_id": group},
            )
            for user, group in sorted(pairs, key=lambda pair: (usernames[pair[0]], groups[pair[1]]))
        ]
    )


def _groups_changed(
    sender: Any, instance: Any, action: str, reverse: bool, pk_set: set[int] | None, **kwargs: Any
) -> None:
    if action in ("pre_remove", "pre_clear"):
        # Only memberships that exist are lost: removing a group someone is not in changes nothing.
        setattr(instance, _MEMBERSHIPS_BEFORE, _pairs(instance, reverse, pk_set))
    elif action in ("post_remove", "post_clear"):
        _record_memberships("access.revoked", getattr(instance, _MEMBERSHIPS_BEFORE, set()))
        setattr(instance, _MEMBERSHIPS_BEFORE, set())
    elif action == "post_add" and pk_set:
        # Django names only the memberships it added, not those already held.
        ids = {(member, instance.pk) if reverse else (instance.pk, member) for member in pk_set}
        _record_memberships("access.granted", ids)


def _group_deleted(sender: Any, instance: Group, **kwargs: Any) -> None:
    _record_memberships("access.revoked", _pairs(instance, True, None), deleted_group=True)


# Flags -------------------------------------------------------------------------------------------


def _flags_before(sender: Any, instance: Any, update_fields: Iterable[str] | None = None, **kwargs: Any) -> None:
    if instance.pk is None or (update_fields is not None and not set(update_fields) & set(FLAGS)):
        setattr(instance, _FLAGS_BEFORE, None)
        return
    before = sender._default_manager.filter(pk=instance.pk).values(*FLAGS).first()
    setattr(instance, _FLAGS_BEFORE, before)


def _flags_after(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    before = dict.fromkeys(FLAGS, False) if created else getattr(instance, _FLAGS_BEFORE, None)
    if before is None:
        return
    username = instance.get_username()
    changed = [(flag, bool(getattr(instance, flag))) for flag in FLAGS if bool(getattr(instance, flag)) != before[flag]]
    _record(
        [
            (
                "access.granted" if now else "access.revoked",
                f"{username} {'made' if now else 'no longer'} {FLAGS[flag]}",
                instance.pk,
                username,
                {"flag": flag},
            )
            for flag, now in changed
        ]
    )


def connect() -> None:
    user_model = get_user_model()
    uid = "audit.access"
    m2m_changed.connect(_groups_changed, sender=user_model.groups.through, dispatch_uid=f"{uid}.groups")
    pre_delete.connect(_group_deleted, sender=Group, dispatch_uid=f"{uid}.group_deleted")
    pre_save.connect(_flags_before, sender=user_model, dispatch_uid=f"{uid}.flags_before")
    post_save.connect(_flags_after, sender=user_model, dispatch_uid=f"{uid}.flags_after")
