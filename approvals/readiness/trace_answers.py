"""The questions of a trace drill, what the trail holds for each, and which answers count as right.

Accepted forms (the form shows each as a hint):
- the change: its id, or any address holding it (its trace page, its undo page);
- a value before or after: the value as the trace page shows it, trimmed, with any case and spacing,
  with or without quotes; "(empty)" for nothing, "yes"/"no" for a flag, a list's items in any order;
- who approved: each approver's username or full name ("Dana Lee and sam"); "no one" when nobody
  approved it (the workflow's file let it through without review);
- the model: its name and its version, in any order ("gpt-x 2026-10-01");
- the prompt version, as the trace shows it;
- how to undo it: the change's undo page (`/changes/<id>/undo/`, with or without the host) or the
  command `manage.py rollback --change <id>` (not a dry run).
"""

import re
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from approvals.models import Proposal, ProposalApproval
from audit.models import AuditEvent
from core.errors import NotFound
from records.catalogue import RECORD_TYPES
from records.models import Change

UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
QUOTES = "'\"`‘’“”"
EMPTY = {"", "(empty)", "empty", "(none)", "none", "nothing", "blank", "-", "—"}
NOBODY = {"no one", "no-one", "nobody", "none", "(none)", "without review", "approved without review"}
NAME_SEPARATORS = re.compile(r",|;|&|/|\band\b")


@dataclass(frozen=True)
class FieldFact:
    name: str
    label: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Approver:
    label: str
    names: frozenset[str]  # each normalised: username, full name


@dataclass(frozen=True)
class TraceFacts:
    """What the Change, its proposal and the trail hold about one applied change."""

    change_id: UUID
    record_type: str
    record_id: str
    fields: tuple[FieldFact, ...]
    approvers: tuple[Approver, ...]
    model_name: str
    model_version: str
    prompt_version: str

    @property
    def undo_path(self) -> str:
        return f"/changes/{self.change_id}/undo/"

    @property
    def undo_command(self) -> str:
        return f"manage.py rollback --change {self.change_id}"


@dataclass(frozen=True)
class Question:
    key: str
    label: str
    hint: str


def changed_fields(change: Change) -> list[FieldFact]:
    """The catalogue fields `change` gave a new value, in the record type's order."""
    spec = RECORD_TYPES.get(change.record_type)
    before = change.before if isinstance(change.before, dict) else {}
    after = change.after if isinstance(change.after, dict) else {}
    if spec is None:
        return []
    return [
        FieldFact(field.name, field.label, before.get(field.name), after.get(field.name))
        for field in spec.fields
        if field.name in after and before.get(field.name) != after.get(field.name)
    ]


def _normal(text: Any) -> str:
    return " ".join(str(text).split()).strip(QUOTES).strip().casefold()


def _approvers(proposal: Proposal) -> tuple[Approver, ...]:
    people = [approval.user for approval in ProposalApproval.objects.filter(proposal=proposal).select_related("user")]
    if not people and proposal.decided_by is not None:
        people = [proposal.decided_by]
    if people:
        return tuple(
            Approver(
                person.get_full_name() or person.get_username(),
                frozenset(_normal(name) for name in (person.get_username(), person.get_full_name()) if name),
            )
            for person in people
        )
    # No approver kept on the proposal: the trail names who approved it, if anyone did.
    events = AuditEvent.objects.filter(proposal_id=proposal.pk, action__in=("proposal.approved", "change.applied"))
    for event in events.order_by("id"):
        label = event.approver_label or (event.actor_label if event.action == "proposal.approved" else "")
        if label:
            return (Approver(label, frozenset({_normal(label)})),)
    return ()


def trace_facts(*, change_id: UUID) -> TraceFacts:
    """What the answers of a drill about `change_id` are checked against."""
    change = Change.objects.filter(pk=change_id).first()
    if change is None:
        raise NotFound(f"no change {change_id}", field="change")
    proposal = None
    if change.proposal_id is not None:
        proposal = Proposal.objects.select_related("decided_by").filter(pk=change.proposal_id).first()
    if proposal is None:
        raise NotFound(f"change {change_id} came from no proposal", field="change")
    return TraceFacts(
        change_id=change.id,
        record_type=change.record_type,
        record_id=change.record_id,
        fields=tuple(changed_fields(change)),
        approvers=_approvers(proposal),
        model_name=proposal.model_name,
        model_version=proposal.model_version,
        prompt_version=proposal.prompt_version or change.prompt_version,
    )


def questions_for(facts: TraceFacts) -> list[Question]:
    """The drill's questions, in the order the form asks them."""
    values_hint = 'As the trace shows it; "(empty)" for nothing.'
    asked = [Question("change", "Which change was it?", "Its id, or the address of its trace page.")]
    for field in facts.fields:
        asked.append(Question(f"before:{field.name}", f"What did its {field.label} hold before?", values_hint))
        asked.append(Question(f"after:{field.name}", f"What did the change set its {field.label} to?", values_hint))
    asked += [
        Question(
            "approver",
            "Who approved it?",
            'Each approver\'s username or full name; "no one" if it was applied without review.',
        ),
        Question("model", "Which model made it?", "Its name and version."),
        Question("prompt", "Which prompt version?", "As the trace shows it."),
        Question(
            "undo",
            "How would you undo it?",
            "The address of its undo page (…/changes/<id>/undo/) or the command manage.py rollback --change <id>.",
        ),
    ]
    return asked


def shown(value: Any) -> str:
    """A value as the trace page shows it."""
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) if value else "(empty)"
    return str(value)


def _value_right(said: str, value: Any) -> bool:
    answer = _normal(said)
    if value is None or value == "" or value == []:
        return answer in EMPTY
    if isinstance(value, bool):
        return answer in ({"yes", "true"} if value else {"no", "false"})
    if isinstance(value, list):
        items = sorted(_normal(item) for item in answer.split(",") if _normal(item))
        return items == sorted(_normal(item) for item in value)
    return answer == _normal(value)


def _approver_right(said: str, approvers: tuple[Approver, ...]) -> bool:
    if not approvers:
        return _normal(said) in NOBODY
    named = {_normal(name) for name in NAME_SEPARATORS.split(said) if _normal(name)}
    known = set().union(*(approver.names for approver in approvers))
    return named <= known and all(approver.names & named for approver in approvers)


def _mentions(text: str, word: str) -> bool:
    """Whether `word` stands on its own in `text` ("gpt-x" is not in "gpt-xl")."""
    return re.search(rf"(?<![\w.-]){re.escape(word)}(?![\w.-])", text) is not None


def _model_right(said: str, facts: TraceFacts) -> bool:
    answer = _normal(said)
    wanted = [_normal(word) for word in (facts.model_name, facts.model_version) if word]
    return bool(wanted) and all(_mentions(answer, word) for word in wanted)


def _prompt_right(said: str, facts: TraceFacts) -> bool:
    answer = _normal(said)
    answer = answer.removeprefix("prompt version ").removeprefix("prompt ").strip()
    return bool(facts.prompt_version) and _normal(answer) == _normal(facts.prompt_version)


def _change_right(said: str, facts: TraceFacts) -> bool:
    found = UUID_PATTERN.search(said)
    return found is not None and found.group(0).lower() == str(facts.change_id)


def _undo_right(said: str, facts: TraceFacts) -> bool:
    answer = " ".join(said.split()).lower()
    change_id = re.escape(str(facts.change_id))
    if re.search(rf"/changes/{change_id}/undo/?(?![\w-])", answer):
        return True
    command = re.search(rf"manage\.py rollback --change[= ]{change_id}(?![\w-])", answer)
    return command is not None and "--dry-run" not in answer


def expected(key: str, facts: TraceFacts) -> str:
    """What the trail holds for the question `key`, as the result page shows it."""
    if key == "change":
        return str(facts.change_id)
    if key.startswith(("before:", "after:")):
        side, name = key.split(":", 1)
        field = next(field for field in facts.fields if field.name == name)
        return shown(field.before if side == "before" else field.after)
    if key == "approver":
        return " and ".join(approver.label for approver in facts.approvers) or "no one (applied without review)"
    if key == "model":
        return f"{facts.model_name} {facts.model_version}".strip()
    if key == "prompt":
        return facts.prompt_version
    return f"{facts.undo_path} or {facts.undo_command}"


def is_right(key: str, said: str, facts: TraceFacts) -> bool:
    if key.startswith(("before:", "after:")):
        side, name = key.split(":", 1)
        field = next(field for field in facts.fields if field.name == name)
        return _value_right(said, field.before if side == "before" else field.after)
    checks = {
        "change": _change_right,
        "model": _model_right,
        "prompt": _prompt_right,
        "undo": _undo_right,
    }
    if key == "approver":
        return _approver_right(said, facts.approvers)
    return checks[key](said, facts)


def verdicts_for(facts: TraceFacts, answers: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Per question: its place, the question, the answer, whether it is right and what the trail holds."""
    return {
        question.key: {
            "position": position,
            "question": question.label,
            "answer": answers[question.key],
            "right": is_right(question.key, answers[question.key], facts),
            "holds": expected(question.key, facts),
        }
        for position, question in enumerate(questions_for(facts))
    }
