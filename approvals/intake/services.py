"""Intake: a pipeline's proposals come in here.

Each one is checked against the field catalogue and the workflow's policies, every refusal naming
its field, and leaves as `shadowed` (shadow stage), `approved` (every changed field has `write`
access, so no review; the worker still applies it) or `pending` (a person countersigns it).
A workflow in `draft` is not ready for intake: like a paused one, it is refused with 423.
`requested_by` must name an active user (see `approvals.requesters`); the account is stored with it.
"""

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from approvals.applying.outcome import POLICY_APPROVER
from approvals.jobs import apply_queue
from approvals.models import (
    Access,
    Action,
    Batch,
    Lane,
    Proposal,
    ProposalStatus,
    ServiceAccount,
    Stage,
    StopScope,
    Workflow,
)
from approvals.requesters import Requester, requesters_named
from approvals.stops.selectors import stop_covering
from approvals.workflows.followups import followup_problems, followup_refusal
from approvals.workflows.releases import prompt_releases_note
from approvals.workflows.selectors import workflow_policy_map
from audit.services import Actor, EventData, audit_record_many
from core.bulk import bulk_insert
from core.errors import ApplicationError, Halted, InvalidTransition, Locked, NotAllowed, NotFound, ValidationFailed
from records.catalogue import RECORD_TYPES, Kind, RecordType, Risk, clean_held_value, clean_value
from records.store import RecordState, get_store, store_side_effects

MAX_FOLLOW_UPS = 10
MAX_REASON_LENGTH = 5000
MAX_LABEL_LENGTH = 100
MAX_RUN_ID_LENGTH = 200
MAX_USERNAME_LENGTH = 150
MAX_BATCH_SIZE = 1_000_000


@dataclass(frozen=True)
class ProposalData:
    """One proposal as a pipeline sends it, in plain values."""

    record_type: str
    record_id: str
    action: str
    reason: str
    confidence: float
    model_name: str
    model_version: str
    prompt_version: str
    changes: dict[str, Any] = field(default_factory=dict)
    base: dict[str, Any] = field(default_factory=dict)
    base_version: int | None = None
    merge_into: str = ""
    run_id: str = ""
    requested_by: str = ""
    follow_ups: list[dict[str, Any]] = field(default_factory=list)


class FieldsNotAllowed(NotAllowed):
    """The policy forbids one or more fields; every one is named."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{name}: {text}" for name, text in problems), field=problems[0][0])

    @property
    def errors(self) -> list[dict[str, str]]:
        return [{"field": name, "message": text} for name, text in self.problems]


def _refuse_unready(workflow: Workflow) -> None:
    if workflow.lane == Lane.ASSIST:
        raise NotAllowed(
            f"workflow {workflow.slug} is in the assist lane: it only reads and drafts, and proposes no change "
            "to a record. Store drafts and summaries as artifacts instead."
        )
    if workflow.stage == Stage.PAUSED:
        raise Locked(f"workflow {workflow.slug} is paused: it takes no proposals until a person resumes it")
    if workflow.stage == Stage.DRAFT:
        raise Locked(
            f"workflow {workflow.slug} is still in draft: it takes proposals once it moves to shadow, canary or live"
        )


def _refuse_stopped(workflow: Workflow, batch: Batch | None) -> None:
    switch = stop_covering(workflow_id=workflow.pk, batch_id=None)
    if switch is not None:
        raise Locked(
            f"the stop switch for {switch.label} is engaged (by {switch.engaged_by_label}: {switch.reason}); "
            "no proposals are taken until a person releases it"
        )
    if batch is not None and batch.discarded_at is not None:
        raise Halted(
            f"batch {batch.pk} was discarded (by {batch.discarded_by_label}: {batch.discard_reason}); "
            "it takes no more proposals"
        )
    if batch is not None:
        switch = stop_covering(workflow_id=None, batch_id=batch.pk)
        if switch is not None and switch.scope == StopScope.BATCH:
            raise Halted(
                f"batch {batch.pk} is halted (stopped by {switch.engaged_by_label}: {switch.reason}); "
                "it takes no more proposals"
            )


def _plain_json_problem(value: Any, depth: int = 0) -> str | None:
    if isinstance(value, str):
        return "must not contain NUL characters" if "\x00" in value else None
    if value is None or isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else "must be a finite number"
    if depth > 4:
        return "is nested too deeply"
    if isinstance(value, list):
        return next((p for item in value if (p := _plain_json_problem(item, depth + 1))), None)
    if isinstance(value, dict):
        if any(not isinstance(key, str) or "\x00" in key for key in value):
            return "must have text keys without NUL characters"
        return next((p for item in value.values() if (p := _plain_json_problem(item, depth + 1))), None)
    return "must be plain JSON"


def _check_follow_ups(
    follow_ups: Any, workflow: Workflow, problems: list[tuple[str, str]], forbidden: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    if not isinstance(follow_ups, list):
        problems.append(("follow_ups", "must be a list"))
        return []
    if len(follow_ups) > MAX_FOLLOW_UPS:
        problems.append(("follow_ups", f"must hold at most {MAX_FOLLOW_UPS} follow-ups"))
        return []
    cleaned = []
    for index, item in enumerate(follow_ups):
        where = f"follow_ups[{index}]"
        if not isinstance(item, dict) or set(item) - {"kind", "params"}:
            problems.append((where, "must be {kind, params}"))
            continue
        kind, params = item.get("kind"), item.get("params", {})
        found = followup_problems(kind=kind, params=params)
        if not found and (problem := _plain_json_problem(params)):
            found = [("params", problem)]
        if found:
            problems.extend((f"{where}.{part}", message) for part, message in found)
            continue
        refusal = followup_refusal(workflow=workflow, kind=str(kind), params=params)
        if refusal is not None:
            forbidden.append((f"{where}.{refusal[0]}", refusal[1]))
            continue
        cleaned.append({"kind": kind, "params": params})
    return cleaned


@dataclass
class _Context:
    """What checking a set of proposals needs from the database, read once for all of them."""

    workflow: Workflow
    policies: dict[tuple[str, str], str]
    policy_types: set[str]
    records: dict[str, dict[str, RecordState]]
    requesters: dict[str, Requester | str]

    @classmethod
    def load(cls, workflow: Workflow, items: Sequence[ProposalData]) -> "_Context":
        policies = workflow_policy_map(workflow=workflow)
        wanted: dict[str, set[str]] = defaultdict(set)
        # What each record holds in the fields its proposals change goes on the trail with them.
        changed: dict[str, set[str]] = defaultdict(set)
        for data in items:
            if data.record_type in RECORD_TYPES:
                wanted[data.record_type].add(data.record_id)
                if data.merge_into:
                    wanted[data.record_type].add(data.merge_into)
                spec = RECORD_TYPES[data.record_type]
                for name, value in data.changes.items():
                    if spec.has_field(name):
                        changed[data.record_type].add(name)
                    if spec.has_field(name) and spec.field(name).kind == Kind.REF and isinstance(value, str):
                        wanted[spec.field(name).ref_type].add(value.strip())
        records = {
            record_type: get_store(record_type).fetch_many(
                record_type, {i for i in ids if "\x00" not in i}, fields=sorted(changed[record_type])
            )
            for record_type, ids in sorted(wanted.items())
        }
        names = {name for data in items if (name := data.requested_by.strip())}
        return cls(
            workflow=workflow,
            policies=policies,
            policy_types={record_type for record_type, _ in policies},
            records=records,
            requesters=requesters_named(names) if names else {},
        )

    def record(self, record_type: str, record_id: str) -> RecordState | None:
        return self.records.get(record_type, {}).get(record_id)


def _known_fields(
    part: str, values: dict[str, Any], record_type: RecordType, problems: list[tuple[str, str]]
) -> Iterator[tuple[str, str, Any]]:
    """(where, name, value) for each field of `values` the record type has; each other one is a problem."""
    for name, value in values.items():
        where = f"{part}.{name[:64]}"
        if record_type.has_field(name):
            yield where, name, value
        else:
            problems.append((where, f"{record_type.name} has no field '{name[:64]}'"))


def _check(data: ProposalData, context: _Context, account: ServiceAccount, batch: Batch | None) -> Proposal:
    """The proposal `data` describes, unsaved, or the refusal that names what is wrong."""
    workflow = context.workflow
    record_type = RECORD_TYPES.get(data.record_type)
    if record_type is None:
        raise ValidationFailed(
            [("record_type", f"unknown record type '{data.record_type[:40]}'; use one of {', '.join(RECORD_TYPES)}")]
        )
    if data.record_type not in context.policy_types:
        raise NotAllowed(f"workflow {workflow.slug} has no access to {data.record_type} records", field="record_type")
    if data.action not in Action.values:
        raise ValidationFailed([("action", f"'{data.action[:40]}' is not one of {', '.join(Action.values)}")])
    if data.action not in workflow.actions:
        allowed = ", ".join(workflow.actions) or "none"
        raise NotAllowed(f"workflow {workflow.slug} may not {data.action} records (it may: {allowed})", field="action")

    forbidden: list[tuple[str, str]] = []
    problems: list[tuple[str, str]] = []
    changes: dict[str, Any] = {}
    for where, name, value in _known_fields("changes", data.changes, record_type, problems):
        access = context.policies.get((data.record_type, name))
        if access not in (Access.SUGGEST, Access.WRITE):
            forbidden.append((where, f"workflow {workflow.slug} may not change {data.record_type}.{name}"))
            continue
        spec = record_type.field(name)
        try:
            changes[name] = clean_value(spec, value)
        except ValueError as error:
            problems.append((where, str(error)))
            continue
        if spec.kind == Kind.REF and context.record(spec.ref_type, changes[name]) is None:
            problems.append((where, f"no {spec.ref_type} '{changes[name][:64]}'"))
    base: dict[str, Any] = {}
    for where, name, value in _known_fields("base", data.base, record_type, problems):
        if (data.record_type, name) not in context.policies:
            forbidden.append((where, f"workflow {workflow.slug} may not read {data.record_type}.{name}"))
            continue
        try:
            base[name] = clean_held_value(record_type.field(name), value)
        except ValueError as error:
            problems.append((where, str(error)))
    follow_ups = _check_follow_ups(data.follow_ups, workflow, problems, forbidden)
    if forbidden:
        raise FieldsNotAllowed(forbidden)

    record = context.record(data.record_type, data.record_id)
    if record is None:
        raise NotFound(f"no {data.record_type} '{data.record_id[:64]}'", field="record_id")

    if data.action == Action.UPDATE:
        if not data.changes:
            problems.append(("changes", "an update must change at least one field"))
        if data.merge_into:
            problems.append(("merge_into", "only a merge names merge_into"))
    elif data.action == Action.MERGE:
        if data.changes:
            problems.append(("changes", "a merge carries merge_into instead of changes"))
        if data.record_type != "customer":
            problems.append(("record_type", "only customer records are merged"))
        elif not data.merge_into:
            problems.append(("merge_into", "a merge must name the record it folds into"))
        elif data.merge_into == data.record_id:
            problems.append(("merge_into", "must name a different record than record_id"))
        elif not data.merge_into.startswith(record_type.id_prefix):
            problems.append(("merge_into", f"must be a {data.record_type} id starting with {record_type.id_prefix}"))
    else:
        if data.changes:
            problems.append(("changes", f"an {data.action} carries no changes"))
        if data.merge_into:
            problems.append(("merge_into", "only a merge names merge_into"))
    if data.base_version is not None and (isinstance(data.base_version, bool) or data.base_version < 1):
        problems.append(("base_version", "must be a record version, 1 or more"))
    reason = data.reason.strip()
    if not reason:
        problems.append(("reason", "must say why the AI suggests this"))
    elif len(reason) > MAX_REASON_LENGTH:
        problems.append(("reason", f"must be at most {MAX_REASON_LENGTH} characters"))
    if isinstance(data.confidence, bool) or not math.isfinite(data.confidence) or not 0 <= data.confidence <= 1:
        problems.append(("confidence", "must be a number from 0 to 1"))
    for where, label in (
        ("model.name", data.model_name),
        ("model.version", data.model_version),
        ("prompt_version", data.prompt_version),
    ):
        if not label.strip():
            problems.append((where, "is required: a change that cannot be traced must not be made"))
        elif len(label) > MAX_LABEL_LENGTH:
            problems.append((where, f"must be at most {MAX_LABEL_LENGTH} characters"))
    if len(data.run_id) > MAX_RUN_ID_LENGTH:
        problems.append(("run_id", f"must be at most {MAX_RUN_ID_LENGTH} characters"))
    if data.requested_by.strip() or batch is None:
        requested_by, requested_by_user_id = _requester_of(data.requested_by.strip(), context.requesters, problems)
    else:
        requested_by, requested_by_user_id = batch.requested_by, batch.requested_by_user_id
    if problems:
        raise ValidationFailed(problems)

    if record.deleted:
        raise InvalidTransition(f"{data.record_type} {data.record_id} is deleted", field="record_id")
    if record.archived and data.action != Action.DELETE:
        raise InvalidTransition(f"{data.record_type} {data.record_id} is archived", field="record_id")
    if data.action == Action.MERGE:
        survivor = context.record(data.record_type, data.merge_into)
        if survivor is None:
            raise NotFound(f"no {data.record_type} '{data.merge_into[:64]}' to merge into", field="merge_into")
        if survivor.archived or survivor.deleted:
            raise InvalidTransition(
                f"{data.record_type} {data.merge_into} is {'deleted' if survivor.deleted else 'archived'}",
                field="merge_into",
            )

    return Proposal(
        workflow=workflow,
        service_account_id=account.pk,
        batch_id=batch.pk if batch else None,
        record_type=data.record_type,
        record_id=data.record_id,
        action=data.action,
        changes=changes,
        base=base,
        base_version=data.base_version,
        merge_into=data.merge_into,
        reason=reason,
        confidence=float(data.confidence),
        model_name=data.model_name.strip(),
        model_version=data.model_version.strip(),
        prompt_version=data.prompt_version.strip(),
        run_id=data.run_id or (batch.run_id if batch else ""),
        requested_by=requested_by,
        requested_by_user_id=requested_by_user_id,
        follow_ups=follow_ups,
        status=_outcome(workflow, data.action, changes, context.policies, data.record_type, follow_ups),
    )


def _requester_of(
    name: str, requesters: dict[str, Requester | str], problems: list[tuple[str, str]]
) -> tuple[str, int | None]:
    """The username and account of the active user `requested_by` names ('' and None when it names
    nobody); a name that cannot be a username, or matches no active user, is a problem on `requested_by`."""
    if not name:
        return "", None
    if len(name) > MAX_USERNAME_LENGTH:
        problems.append(("requested_by", f"must be at most {MAX_USERNAME_LENGTH} characters"))
        return "", None
    match = requesters[name]
    if isinstance(match, str):
        problems.append(("requested_by", match))
        return "", None
    return match.username, match.user_id


def _outcome(
    workflow: Workflow,
    action: str,
    changes: dict[str, Any],
    policies: dict[tuple[str, str], str],
    record_type: str,
    follow_ups: list[dict[str, Any]],
) -> str:
    """Shadowed in shadow; else approved without review only for a plain update of low-risk `write`
    fields that asks for no follow-up (an email or a webhook goes out only once a person saw it) and
    sets no field whose write the system of record answers with a side effect of its own."""
    if workflow.stage == Stage.SHADOW:
        return ProposalStatus.SHADOWED
    spec = RECORD_TYPES[record_type]
    without_review = (
        workflow.lane == Lane.WRITE
        and workflow.stage in (Stage.CANARY, Stage.LIVE)
        and not follow_ups
        and action == Action.UPDATE
        and action not in workflow.two_person_actions
        and bool(changes)
        and all(
            policies.get((record_type, name)) == Access.WRITE
            and spec.field(name).risk == Risk.LOW
            and name not in workflow.two_person_fields
            for name in changes
        )
        # What the system of record itself does on the write (an email to a customer) needs a person.
        and not set(changes) & set(store_side_effects(record_type=record_type))
    )
    return ProposalStatus.APPROVED if without_review else ProposalStatus.PENDING


def _events(proposal: Proposal, actor: Actor, account: ServiceAccount, context: _Context) -> list[EventData]:
    common = proposal.trail_fields()
    proposed: Any = proposal.changes or ({"merge_into": proposal.merge_into} if proposal.merge_into else None)
    record = context.record(proposal.record_type, proposal.record_id)
    # What the record held when the proposal arrived, field by field; what the AI saw is its `base`,
    # kept apart in the details (see `audit.reading`).
    held = {name: record.values.get(name) for name in proposal.changes} if record and proposal.changes else None
    events = [
        EventData(
            action="proposal.submitted",
            actor=actor,
            old_value=held,
            new_value=proposed,
            reason=proposal.reason,
            details={
                "base": proposal.base,
                "action": proposal.action,
                "status": proposal.status,
                "confidence": proposal.confidence,
                "run_id": proposal.run_id,
                "requested_by": proposal.requested_by,
                "service_account": account.name,
            },
            occurred_at=proposal.created_at,
            **common,
        )
    ]
    if proposal.status == ProposalStatus.APPROVED:
        events.append(
            EventData(
                action="proposal.approved",
                actor=Actor.system(POLICY_APPROVER),
                approver_label=POLICY_APPROVER,
                decided_at=proposal.decided_at,
                reason=proposal.decision_note,
                new_value=proposed,
                occurred_at=proposal.created_at,
                **common,
            )
        )
    elif proposal.status == ProposalStatus.SHADOWED:
        events.append(
            EventData(
                action="proposal.shadowed",
                actor=actor,
                reason=f"workflow {proposal.workflow.slug} is in shadow: recorded for review, never applied",
                new_value=proposed,
                occurred_at=proposal.created_at,
                **common,
            )
        )
    return events


def proposal_submit_many(
    *,
    account: ServiceAccount,
    items: Sequence[ProposalData | ApplicationError],
    batch: Batch | None = None,
) -> list[Proposal | ApplicationError]:
    """Check and store many proposals at once: one result per item, in order.

    An item that is already an error (it could not be read) is passed through. A bad item is
    refused on its own; every accepted one is written, with its audit events, in one transaction.
    A paused, draft, assist-lane or stopped workflow, or a halted or discarded batch, refuses the whole call.
    """
    workflow = account.workflow
    if batch is not None and batch.workflow_id != workflow.pk:
        raise NotFound(f"no batch {batch.pk} in workflow {workflow.slug}", field="batch")
    _refuse_unready(workflow)
    _refuse_stopped(workflow, batch)
    datas = [item for item in items if isinstance(item, ProposalData)]
    context = _Context.load(workflow, datas)
    now = timezone.now()
    results: list[Proposal | ApplicationError] = []
    accepted: list[Proposal] = []
    for item in items:
        if isinstance(item, ApplicationError):
            results.append(item)
            continue
        try:
            proposal = _check(item, context, account, batch)
        except ApplicationError as error:
            results.append(error)
            continue
        proposal.created_at = proposal.updated_at = now
        if proposal.status == ProposalStatus.APPROVED:
            proposal.approved_at = proposal.decided_at = now
            proposal.decision_note = "approved without review: every changed field has write access"
        results.append(proposal)
        accepted.append(proposal)
    if not accepted:
        return results
    actor = Actor.service_account(account)
    with transaction.atomic(savepoint=False):
        bulk_insert(Proposal, accepted)
        prompt_releases_note(workflow=workflow, prompt_versions=[p.prompt_version for p in accepted], at=now)
        audit_record_many(event for proposal in accepted for event in _events(proposal, actor, account, context))
        approved = [p.pk for p in accepted if p.status == ProposalStatus.APPROVED]
        if approved:
            apply_queue(proposal_ids=approved)
    return results


def proposal_submit(*, account: ServiceAccount, data: ProposalData, batch: Batch | None = None) -> Proposal:
    """Check and store one proposal, or raise the refusal that names what is wrong."""
    [result] = proposal_submit_many(account=account, items=[data], batch=batch)
    if isinstance(result, ApplicationError):
        raise result
    return result


def batch_open(*, account: ServiceAccount, name: str, run_id: str, expected_size: int, requested_by: str = "") -> Batch:
    """Open a batch for a bulk job of the account's workflow."""
    workflow = account.workflow
    _refuse_unready(workflow)
    _refuse_stopped(workflow, None)
    problems: list[tuple[str, str]] = []
    name, run_id, requested_by = name.strip(), run_id.strip(), requested_by.strip()
    if not name or len(name) > 200:
        problems.append(("name", "must be 1 to 200 characters"))
    if not run_id or len(run_id) > MAX_RUN_ID_LENGTH:
        problems.append(("run_id", f"must be 1 to {MAX_RUN_ID_LENGTH} characters"))
    if isinstance(expected_size, bool) or not 1 <= expected_size <= MAX_BATCH_SIZE:
        problems.append(("expected_size", f"must be a whole number from 1 to {MAX_BATCH_SIZE}"))
    requesters = requesters_named([requested_by]) if requested_by else {}
    requested_by, requested_by_user_id = _requester_of(requested_by, requesters, problems)
    if problems:
        raise ValidationFailed(problems)
    with transaction.atomic(savepoint=False):
        batch = Batch.objects.create(
            workflow=workflow,
            service_account=account,
            name=name,
            run_id=run_id,
            expected_size=expected_size,
            requested_by=requested_by,
            requested_by_user_id=requested_by_user_id,
        )
        audit_record_many(
            [
                EventData(
                    action="batch.opened",
                    actor=Actor.service_account(account),
                    batch_id=batch.pk,
                    workflow_slug=workflow.slug,
                    details={"name": name, "run_id": run_id, "expected_size": expected_size},
                )
            ]
        )
    return batch
