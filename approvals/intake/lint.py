"""The minimisation lint: does a prompt or an output carry values the workflow was never meant to read?

A workflow's field policies say what its AI may see. If the current value of a personal field or a
note it has no policy on turns up inside a prompt or an output, the input was not as minimal as the
policy says. The artifact and its proposal are flagged, naming the field and never the value.
"""

import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from approvals.models import Proposal
from approvals.workflows.selectors import workflow_policy_map
from audit.models import Artifact, ArtifactKind
from audit.services import Actor, EventData, audit_record_many
from records.catalogue import NOTE_MAX_LENGTH, RECORD_TYPES, FieldSpec, Kind, Sensitivity
from records.store import RecordNotFound, RecordRef, get_store

LINTED_KINDS = frozenset({ArtifactKind.PROMPT, ArtifactKind.OUTPUT})
# Values shorter than this, once normalised, match too much ordinary text to mean anything.
MIN_VALUE_LENGTH = 6
# A long note is also caught when one of its sentences turns up on its own.
MIN_SENTENCE_LENGTH = 24
MIN_PHONE_DIGITS = 7
PHONE_TAIL_DIGITS = 9
# Larger stored files are not read back for the lint.
MAX_FILE_BYTES = 2 * 1024 * 1024
LINT_ACTOR = Actor.system("minimisation lint")

_NOT_WORD = re.compile(r"[\W_]+")
_SENTENCE_END = re.compile(r"[.!?;\n]+")
_PHONE_VALUE = re.compile(r"^\+?[\d\s().\-/]+$")
_PHONE_IN_TEXT = re.compile(r"\+?\d[\d\s().\-/]{5,}\d")


def _normal(text: str) -> str:
    """Case, punctuation and spacing removed, padded so a match is always whole words."""
    return f" {_NOT_WORD.sub(' ', text.casefold()).strip()} "


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _is_linted(spec: FieldSpec) -> bool:
    """Personal data and free-text notes: the values that must not reach a model by accident."""
    return spec.kind in (Kind.TEXT, Kind.EMAIL) and (
        spec.sensitivity == Sensitivity.PII or spec.max_length >= NOTE_MAX_LENGTH
    )


@dataclass(frozen=True)
class _Content:
    words: str
    phone_numbers: frozenset[str]

    @classmethod
    def of(cls, text: str) -> "_Content":
        numbers = {_digits(match) for match in _PHONE_IN_TEXT.findall(text)}
        return cls(words=_normal(text), phone_numbers=frozenset(n for n in numbers if len(n) >= MIN_PHONE_DIGITS))


def _found(value: Any, content: _Content) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    digits = _digits(value)
    if _PHONE_VALUE.match(value) and len(digits) >= MIN_PHONE_DIGITS:
        # The same number is written many ways: +44 7700 900123, 07700-900123, (0)7700 900 123.
        tail = digits[-PHONE_TAIL_DIGITS:]
        return any(number[-PHONE_TAIL_DIGITS:] == tail for number in content.phone_numbers)
    normal = _normal(value)
    if len(normal.strip()) >= MIN_VALUE_LENGTH and normal in content.words:
        return True
    sentences = (_normal(part) for part in _SENTENCE_END.split(value))
    return any(len(sentence.strip()) >= MIN_SENTENCE_LENGTH and sentence in content.words for sentence in sentences)


def _artifact_text(artifact: Artifact) -> str:
    if artifact.content:
        return artifact.content
    if artifact.file and artifact.size <= MAX_FILE_BYTES:
        with artifact.file.open("rb") as stored:
            return stored.read().decode("utf-8", errors="ignore")
    return ""


def _records_to_check(proposal: Proposal) -> list[RecordRef]:
    """The proposal's record, and the customer an order or ticket belongs to."""
    record_type = RECORD_TYPES.get(proposal.record_type)
    if record_type is None:
        return []
    ref = RecordRef(proposal.record_type, proposal.record_id)
    links = {spec.name: spec.ref_type for spec in record_type.fields if spec.kind == Kind.REF}
    if not links:
        return [ref]
    try:
        state = get_store(ref.record_type).fetch(ref, list(links))
    except RecordNotFound:
        return [ref]
    return [ref] + [RecordRef(links[name], state.values[name]) for name in links if state.values.get(name)]


def artifact_lint(*, artifact: Artifact) -> list[str]:
    """Check a prompt or output for values of fields its workflow may not read. Returns the fields hit,
    as `record_type.field`, after flagging the artifact and its proposal and recording one event each."""
    if artifact.kind not in LINTED_KINDS or artifact.proposal_id is None:
        return []
    proposal = Proposal.objects.select_related("workflow").filter(pk=artifact.proposal_id).first()
    if proposal is None:
        return []
    policies = workflow_policy_map(workflow=proposal.workflow)
    content = _Content.of(_artifact_text(artifact))
    hits: list[str] = []
    for ref in _records_to_check(proposal):
        unreadable = [
            spec.name
            for spec in RECORD_TYPES[ref.record_type].fields
            if _is_linted(spec) and (ref.record_type, spec.name) not in policies
        ]
        if not unreadable:
            continue
        try:
            state = get_store(ref.record_type).fetch(ref, unreadable)
        except RecordNotFound:
            continue
        hits.extend(f"{ref.record_type}.{name}" for name in unreadable if _found(state.values.get(name), content))
    if not hits:
        return []
    with transaction.atomic():
        locked = Proposal.objects.select_for_update().get(pk=proposal.pk)
        locked.flagged_fields = sorted(set(locked.flagged_fields) | set(hits))
        locked.save(update_fields=["flagged_fields"])
        Artifact.objects.filter(pk=artifact.pk).update(flagged_fields=sorted(set(artifact.flagged_fields) | set(hits)))
        artifact.flagged_fields = sorted(set(artifact.flagged_fields) | set(hits))
        audit_record_many(
            EventData(
                action="proposal.artifact_flagged",
                actor=LINT_ACTOR,
                field=hit,
                details={"artifact_id": str(artifact.pk), "kind": artifact.kind, "bucket": artifact.bucket},
                **proposal.trail_fields(),
            )
            for hit in hits
        )
    return hits
