"""The proposal as the apply path reads and marks it: one plain statement each, no ORM compilation
on the per-write path (it runs once per write, so every column and model it skips is time saved).

A chunk starts by counting an attempt for each of its approved proposals in the statement that reads
them (`proposals_start`), so a worker process that ends mid-chunk leaves its attempts counted; what
ends without a failure of its own gives the attempt back, an applied proposal in the statement that
marks it (`mark_applied`), the others together at the end of the chunk (`proposals_give_back`).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from approvals.models import PromptRelease, Proposal, ProposalStatus, ServiceAccount, Stage, Workflow
from core.roundtrip import Rows, Statement, built_once, run_together

# What applying reads of a proposal and its workflow, approver and service account (and nothing more:
# the apply path runs once per write, so every column and model it skips is time saved).
APPLY_FIELDS = (
    "status",
    "workflow__slug",
    "workflow__stage",
    "workflow__canary_daily_limit",
    "batch_id",
    "record_type",
    "record_id",
    "action",
    "changes",
    "base",
    "base_version",
    "merge_into",
    "reason",
    "model_name",
    "model_version",
    "prompt_version",
    "follow_ups",
    "decided_at",
    "decided_by__username",
    "decided_by__first_name",
    "decided_by__last_name",
    "service_account__callback_url",
    "change_id",
    "last_error",
    "updated_at",
)


def _proposal_attnames() -> list[str]:
    """The proposal's columns that applying reads, in the model's order (as `Model.from_db` takes them)."""
    wanted = {"id", "workflow_id", "decided_by_id", "service_account_id", *(n for n in APPLY_FIELDS if "__" not in n)}
    return [field.attname for field in Proposal._meta.concrete_fields if field.attname in wanted]


def _proposal_converters() -> list[tuple[Any, list[Any]]]:
    """Per column read, the converters a queryset would run on its raw value (JSON text, times, ...)."""
    table = Proposal._meta.db_table
    fields = {field.attname: field for field in Proposal._meta.concrete_fields}
    converters = []
    for name in _proposal_attnames():
        field = fields[name]
        expression = field.get_col(table)
        converters.append(
            (expression, [*connection.ops.get_db_converters(expression), *field.get_db_converters(connection)])
        )
    return converters


def _lock_proposal_sql() -> str:
    User = get_user_model()
    quote = connection.ops.quote_name
    column_of = {field.attname: str(field.column) for field in Proposal._meta.concrete_fields}
    columns = ", ".join(f"p.{quote(column_of[name])}" for name in _proposal_attnames())
    lock = " FOR UPDATE OF p" if connection.features.has_select_for_update_of else ""
    return (
        f"SELECT {columns}, "  # noqa: S608
        f"w.{quote('slug')}, w.{quote('stage')}, w.{quote('canary_daily_limit')}, "
        f"u.{quote('username')}, u.{quote('first_name')}, u.{quote('last_name')}, a.{quote('callback_url')} "
        f"FROM {quote(Proposal._meta.db_table)} p "
        f"JOIN {quote(Workflow._meta.db_table)} w ON w.{quote('id')} = p.{quote('workflow_id')} "
        f"LEFT JOIN {quote(User._meta.db_table)} u ON u.{quote('id')} = p.{quote('decided_by_id')} "
        f"LEFT JOIN {quote(ServiceAccount._meta.db_table)} a ON a.{quote('id')} = p.{quote('service_account_id')} "
        f"WHERE p.{quote('id')} = %s{lock}"
    )


def lock_proposal_statement(proposal_id: int) -> Statement:
    """The proposal under a row lock, with the few columns of its workflow, approver and service
    account that applying reads: one plain statement, no ORM compilation on the per-write path."""
    return Statement(built_once("apply: lock proposal", _lock_proposal_sql), [proposal_id], prepared=True)


def locked_proposal(rows: Rows) -> Proposal | None:
    """The proposal `_lock_proposal_statement` read, with its workflow, approver and service account."""
    if not rows:
        return None
    *own, slug, stage, canary_daily_limit, username, first_name, last_name, callback_url = rows[0]
    values = []
    for value, (expression, converters) in zip(
        own, built_once("apply: proposal converters", _proposal_converters), strict=True
    ):
        for converter in converters:
            value = converter(value, expression, connection)
        values.append(value)
    names = built_once("apply: proposal columns", _proposal_attnames)
    proposal = Proposal.from_db(connection.alias, names, values)
    User = get_user_model()
    proposal.workflow = Workflow.from_db(
        connection.alias,
        ["id", "slug", "stage", "canary_daily_limit"],
        [proposal.workflow_id, slug, stage, canary_daily_limit],
    )
    proposal.decided_by = (
        None
        if proposal.decided_by_id is None
        else User.from_db(
            connection.alias,
            ["id", "username", "first_name", "last_name"],
            [proposal.decided_by_id, username, first_name, last_name],
        )
    )
    proposal.service_account = (
        None
        if proposal.service_account_id is None
        else ServiceAccount.from_db(
            connection.alias, ["id", "callback_url"], [proposal.service_account_id, callback_url]
        )
    )
    return proposal


def _mark_applied_sql() -> str:
    quote = connection.ops.quote_name
    attempts = quote("apply_attempts")
    return (
        f"UPDATE {quote(Proposal._meta.db_table)} SET {quote('status')} = %s, {quote('change_id')} = %s, "  # noqa: S608
        f"{quote('updated_at')} = %s, "
        f"{attempts} = CASE WHEN {attempts} > 0 THEN {attempts} - 1 ELSE 0 END WHERE {quote('id')} = %s"
    )


def mark_applied(proposal: Proposal, change_id: UUID) -> Statement:
    """The statement that marks `proposal` applied under `change_id` (and the instance, at once), and
    gives back the attempt its chunk counted when it started."""
    proposal.status = ProposalStatus.APPLIED
    proposal.change_id = change_id
    proposal.updated_at = timezone.now()
    return Statement(
        built_once("apply: mark applied", _mark_applied_sql),
        [
            proposal.status,
            Proposal._meta.get_field("change_id").get_db_prep_save(change_id, connection),
            Proposal._meta.get_field("updated_at").get_db_prep_save(proposal.updated_at, connection),
            proposal.pk,
        ],
        prepared=True,
    )


@dataclass(frozen=True)
class Known:
    """What a chunk reads of an approved proposal before its transaction: what a proposal never
    changes, and whether its prompt version was held to the canary cap when the chunk started (a
    live workflow's version not promoted yet; the write checks again under the release's lock)."""

    workflow_id: int
    batch_id: int | None
    record_type: str
    record_id: str
    prompt_version: str
    prompt_held: bool = field(default=False, compare=False)

    @classmethod
    def of(cls, proposal: Proposal) -> "Known":
        return cls(
            proposal.workflow_id, proposal.batch_id, proposal.record_type, proposal.record_id, proposal.prompt_version
        )


@dataclass(frozen=True)
class Started:
    """A proposal a chunk counted an attempt for: what it never changes, and its attempts counted so
    far, this one included."""

    known: Known
    attempts: int


def _in(count: int) -> str:
    return ", ".join(["%s"] * count)


def proposals_start(proposal_ids: Sequence[int]) -> dict[int, Started]:
    """Count an attempt for each of these proposals that is approved, and read what a chunk needs of
    them, in one statement (outside any transaction: the count stays if the process ends mid-chunk).

    On PostgreSQL the rows are taken in id order and one that another transaction holds is skipped:
    it is left out of the answer, as one no longer approved is, and no time is spent waiting on it.
    """
    if not proposal_ids:
        return {}
    quote = connection.ops.quote_name
    table, attempts = quote(Proposal._meta.db_table), quote("apply_attempts")
    key = quote("id")
    chosen = f"{key} IN ({_in(len(proposal_ids))}) AND {quote('status')} = %s"
    if connection.features.has_select_for_update_skip_locked:
        locked = f"SELECT {key} FROM {table} WHERE {chosen} ORDER BY {key} FOR UPDATE SKIP LOCKED"  # noqa: S608
        chosen = f"{key} IN ({locked})"
    columns = ("id", "workflow_id", "batch_id", "record_type", "record_id", "prompt_version", "apply_attempts")
    sql = (
        f"UPDATE {table} SET {attempts} = {attempts} + 1 WHERE {chosen} "  # noqa: S608
        f"RETURNING {', '.join(quote(name) for name in columns)}, {_prompt_held_sql()}"
    )
    [rows] = run_together([Statement(sql, [*proposal_ids, ProposalStatus.APPROVED, Stage.LIVE])])
    return {
        pk: Started(Known(workflow_id, batch_id, record_type, record_id, prompt_version, bool(held)), count)
        for pk, workflow_id, batch_id, record_type, record_id, prompt_version, count, held in rows
    }


def _prompt_held_sql() -> str:
    """Whether the updated proposal's prompt version is held (its live workflow has not promoted
    it): read with the chunk's start, so a chunk asks nothing more of the releases."""
    quote = connection.ops.quote_name
    proposals = quote(Proposal._meta.db_table)
    return (
        f"EXISTS (SELECT 1 FROM {quote(PromptRelease._meta.db_table)} r "  # noqa: S608
        f"JOIN {quote(Workflow._meta.db_table)} w ON w.{quote('id')} = r.{quote('workflow_id')} "
        f"WHERE r.{quote('workflow_id')} = {proposals}.{quote('workflow_id')} "
        f"AND r.{quote('prompt_version')} = {proposals}.{quote('prompt_version')} "
        f"AND r.{quote('promoted_at')} IS NULL AND w.{quote('stage')} = %s)"
    )


def proposals_give_back(proposal_ids: Sequence[int]) -> None:
    """Take back the attempt counted at the chunk's start for these proposals: they ended without a
    failure of their own (held, deferred, decided otherwise) or were queued to be tried apart."""
    if not proposal_ids:
        return
    quote = connection.ops.quote_name
    attempts = quote("apply_attempts")
    sql = (
        f"UPDATE {quote(Proposal._meta.db_table)} SET {attempts} = {attempts} - 1 "  # noqa: S608
        f"WHERE {quote('id')} IN ({_in(len(proposal_ids))}) AND {attempts} > 0"
    )
    run_together([Statement(sql, list(proposal_ids))])
