"""Who asked for a change: the person a proposal names, or the person who started its batch. They
never decide it and never override what blocks it, so the rights to decide (`review.rights`) and to
override (`overrides.rights`) both ask here.

A pipeline names that person by username. Intake accepts only a name that matches one active user
once both are compared as `requester_key` compares them, stores that account beside the name, and
refuses a name holding invisible or control characters: NFKC keeps a zero-width space, so
`"lead\u200b"` would otherwise read as lead on every screen yet name nobody. Comparisons ignore such
characters all the same, so a name stored before that refusal still counts as its person.
"""

import unicodedata
from collections.abc import Collection
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q
from django.db.models.functions import Lower

from approvals.models import Batch, Proposal

Viewer = AbstractBaseUser | AnonymousUser

# Control, format (zero-width, bidi), surrogate, private-use and unassigned characters, and line and
# paragraph separators: none is visible in a username, none belongs in one.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Outside printable ASCII: a username that may fold onto an ASCII name only after normalising.
_NOT_PRINTABLE_ASCII = r"[^ -~]"


def _invisible(name: str) -> list[str]:
    return [char for char in name if unicodedata.category(char) in _INVISIBLE_CATEGORIES]


def requester_key(name: str) -> str:
    """How two names are compared: invisible characters dropped, NFKC, case folded (NFKC again, since
    folding can undo it). `"LEAD"`, `"lead\u200b"` and `"ｌｅａｄ"` all compare as `"lead"`."""
    visible = "".join(char for char in name if unicodedata.category(char) not in _INVISIBLE_CATEGORIES)
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", visible).casefold())


@dataclass(frozen=True)
class Requester:
    """The active account a name given by a pipeline matched."""

    user_id: int
    username: str


def requesters_named(names: Collection[str]) -> dict[str, Requester | str]:
    """For each name, the one active user it names, or why it names none (a sentence, for a 422 on
    `requested_by`). Where several users share its key, the one whose username is the name exactly.
    One query, whatever the number of names."""
    answers: dict[str, Requester | str] = {}
    wanted: dict[str, str] = {}
    for name in names:
        if found := _invisible(name):
            codes = ", ".join(sorted({f"U+{ord(char):04X}" for char in found}))
            answers[name] = f"must be a username without invisible or control characters (it holds {codes})"
        else:
            wanted[name] = requester_key(name)
    if not wanted:
        return answers
    matches: dict[str, list[Requester]] = {}
    for user_id, username in _candidates(set(wanted.values())):
        matches.setdefault(requester_key(username), []).append(Requester(user_id=user_id, username=username))
    for name, key in wanted.items():
        found_users = matches.get(key, [])
        exact = [match for match in found_users if match.username == name]
        if len(found_users) == 1 or len(exact) == 1:
            answers[name] = (exact or found_users)[0]
        elif found_users:
            listed = ", ".join(sorted(match.username for match in found_users))
            answers[name] = f"'{name}' matches more than one active user ({listed}); give the exact username"
        else:
            answers[name] = f"'{name}' is not the username of an active user"
    return answers


def _candidates(keys: set[str]) -> list[tuple[int, str]]:
    """Active users whose username may have one of these keys: a printable ASCII username has the key
    of its lower case, which the database compares; any other is read and compared here."""
    user_model = get_user_model()
    field = user_model.USERNAME_FIELD
    ascii_keys = [key for key in keys if key.isascii()]
    return list(
        user_model._default_manager.filter(is_active=True)
        .annotate(folded_username=Lower(field))
        .filter(Q(folded_username__in=ascii_keys) | Q(**{f"{field}__regex": _NOT_PRINTABLE_ASCII}))
        .values_list("pk", field)
    )


def _same_name(recorded: str, user: Viewer) -> bool:
    return bool(recorded) and requester_key(recorded) == requester_key(user.get_username())


def started_batch(*, batch: Batch, user: Viewer) -> bool:
    if not user.is_authenticated:
        return False
    return batch.requested_by_user_id == user.pk or _same_name(batch.requested_by, user)


def requester_reason(*, proposal: Proposal, user: Viewer) -> str:
    """Why `user` counts as the requester of `proposal`, as a sentence; empty when they do not.
    Reads the proposal's batch: select it with the proposal."""
    if not user.is_authenticated:
        return ""
    if proposal.requested_by_user_id is not None and proposal.requested_by_user_id == user.pk:
        return "You asked for this change"
    if _same_name(proposal.requested_by, user):
        return "You asked for this change"
    if proposal.batch_id is not None and proposal.batch is not None and started_batch(batch=proposal.batch, user=user):
        return f"You started the batch it belongs to ({proposal.batch.name})"
    return ""


def asked_for_by(user: Viewer) -> Q:
    """The proposals `user` counts as the requester of (see `requester_reason`), as a filter. By
    account, and by name in any case; a name stored with invisible characters before intake refused
    them is matched by `requester_reason` only."""
    if not user.is_authenticated:
        return Q(pk__in=[])
    asked = Q(requested_by_user_id=user.pk) | Q(batch__requested_by_user_id=user.pk)
    if username := user.get_username():
        asked |= Q(requested_by__iexact=username) | Q(batch__requested_by__iexact=username)
    return asked
