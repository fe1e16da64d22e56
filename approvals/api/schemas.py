"""What the pipeline API reads and writes. Request bodies are strict: exact types, no unknown keys."""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from ninja import Schema
from pydantic import BaseModel, ConfigDict, Field

from approvals.intake.services import (
    MAX_FOLLOW_UPS,
    MAX_LABEL_LENGTH,
    MAX_REASON_LENGTH,
    MAX_RUN_ID_LENGTH,
    MAX_USERNAME_LENGTH,
    ProposalData,
)
from approvals.models import FollowUpKind, ProposalStatus
from audit.models import ArtifactKind, Bucket

RecordTypeName = Literal["customer", "order", "ticket"]
ActionName = Literal["update", "archive", "delete", "merge"]
StatusName = Literal[
    "pending", "approved", "applied", "rejected", "conflict", "expired", "cancelled", "shadowed", "reverted", "failed"
]
assert set(StatusName.__args__) == set(ProposalStatus.values)  # type: ignore[attr-defined]  # noqa: S101
MAX_BATCH_ITEMS = 1000
MAX_ARTIFACT_TEXT = 2_000_000


class StrictBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class ModelIn(StrictBody):
    name: str = Field(max_length=MAX_LABEL_LENGTH, description="the model's name, e.g. gpt-x")
    version: str = Field(max_length=MAX_LABEL_LENGTH, description="the model's version, e.g. 2026-10-01")


class FollowUpIn(StrictBody):
    kind: Literal["email_customer", "webhook"]
    params: dict[str, Any] = Field(
        default_factory=dict,
        max_length=20,
        description="email_customer: {template}; webhook: {url, payload}, to one of the workflow's webhook hosts",
    )


assert set(FollowUpIn.model_fields["kind"].annotation.__args__) == set(FollowUpKind.values)  # type: ignore[union-attr]  # noqa: S101


class ProposalIn(StrictBody):
    """One proposed action on one record."""

    record_type: RecordTypeName
    record_id: str = Field(min_length=1, max_length=64, description="the id staff use, e.g. CUS-10432")
    action: ActionName
    changes: dict[str, Any] | None = Field(
        None, max_length=30, description="update only: field -> new value, in the field's plain form"
    )
    base: dict[str, Any] | None = Field(
        None, max_length=30, description="the values the AI saw, for the fields it read; only readable fields"
    )
    base_version: int | None = Field(
        None, ge=1, le=2_147_483_647, description="the record's version the AI saw, from GET /records (optional)"
    )
    merge_into: str | None = Field(None, max_length=64, description="merge only: the surviving record's id")
    reason: str = Field(max_length=MAX_REASON_LENGTH, description="why the AI suggests this; not empty")
    confidence: float = Field(ge=0, le=1, allow_inf_nan=False)
    model: ModelIn
    prompt_version: str = Field(max_length=MAX_LABEL_LENGTH)
    run_id: str | None = Field(None, max_length=MAX_RUN_ID_LENGTH)
    requested_by: str | None = Field(
        None, max_length=MAX_USERNAME_LENGTH, description="username of the person on whose behalf the job ran"
    )
    follow_ups: list[FollowUpIn] | None = Field(None, max_length=MAX_FOLLOW_UPS)

    def to_data(self) -> ProposalData:
        return ProposalData(
            record_type=self.record_type,
            record_id=self.record_id,
            action=self.action,
            changes=self.changes or {},
            base=self.base or {},
            base_version=self.base_version,
            merge_into=self.merge_into or "",
            reason=self.reason,
            confidence=self.confidence,
            model_name=self.model.name,
            model_version=self.model.version,
            prompt_version=self.prompt_version,
            run_id=self.run_id or "",
            requested_by=self.requested_by or "",
            follow_ups=[{"kind": item.kind, "params": item.params} for item in self.follow_ups or []],
        )


class BatchIn(StrictBody):
    name: str = Field(max_length=200)
    run_id: str = Field(max_length=MAX_RUN_ID_LENGTH)
    expected_size: int = Field(ge=1, le=1_000_000)
    requested_by: str | None = Field(
        None, max_length=MAX_USERNAME_LENGTH, description="username of the person who started the job"
    )


class BatchProposalsIn(StrictBody):
    proposals: list[ProposalIn] = Field(max_length=MAX_BATCH_ITEMS)


class StopIn(StrictBody):
    reason: str = Field(max_length=2000, description="why the batch must stop; a person reads it")


class DiscardIn(StrictBody):
    reason: str = Field(max_length=2000, description="why the batch is discarded; kept in the trail")


class ArtifactIn(StrictBody):
    """Text goes in `content`; binary content, base64-encoded, in `content_base64`. Exactly one of the two."""

    kind: Literal["prompt", "output", "attachment", "cache", "error_log"]
    bucket: Literal["live", "training", "analytics"]
    name: str | None = Field(None, max_length=200)
    content: str | None = Field(None, max_length=MAX_ARTIFACT_TEXT)
    content_base64: str | None = Field(None, max_length=MAX_ARTIFACT_TEXT * 2)


assert set(ArtifactIn.model_fields["kind"].annotation.__args__) == set(ArtifactKind.values)  # type: ignore[union-attr]  # noqa: S101
assert set(ArtifactIn.model_fields["bucket"].annotation.__args__) == set(Bucket.values)  # type: ignore[union-attr]  # noqa: S101

BODY_MODELS: list[type[BaseModel]] = [ProposalIn, BatchIn, BatchProposalsIn, StopIn, DiscardIn, ArtifactIn]


class ProposalCreated(Schema):
    id: int
    status: StatusName
    review_url: str = Field(description="the review screen for this proposal")


class DecisionOut(Schema):
    by: str
    at: datetime
    note: str


class ProposalOut(Schema):
    id: int
    status: StatusName
    record_type: str
    record_id: str
    action: str
    changes: dict[str, Any]
    decision: DecisionOut | None
    change_id: UUID | None


class RecordOut(Schema):
    record_type: str
    record_id: str
    version: int
    fields: dict[str, Any] = Field(description="only the fields the workflow may read")


class StopOut(Schema):
    scope: str
    reason: str
    engaged_at: datetime
    engaged_by: str


class DiscardedOut(Schema):
    at: datetime
    by: str
    reason: str
    cancelled: int = Field(description="pending proposals the discard cancelled")


class BatchOut(Schema):
    id: int
    name: str
    run_id: str
    expected_size: int
    requested_by: str
    created_at: datetime
    total: int
    counts: dict[str, int] = Field(description="proposals by status, every status listed")
    stopped: bool
    stop: StopOut | None
    discarded: DiscardedOut | None = Field(description="null until the batch is discarded")


class BatchDiscardOut(BatchOut):
    cancelled: int = Field(description="pending proposals this request cancelled (0 when it found none left)")
    already_discarded: bool = Field(description="the batch had been discarded before this request")
    undo_url: str | None = Field(
        description="where a person undoes the batch's applied changes, which a discard leaves untouched; "
        "null when none is applied"
    )


class BatchItemResult(Schema):
    index: int
    status_code: int = Field(description="201 when accepted, else the error's status")
    body: dict[str, Any] = Field(description="{id, status, review_url} when accepted, else a problem")


class BatchItemsOut(Schema):
    batch_id: int
    accepted: int
    refused: int
    results: list[BatchItemResult]


class ArtifactOut(Schema):
    id: UUID
    proposal_id: int | None
    kind: str
    bucket: str
    name: str
    sha256: str
    size: int
    expires_at: datetime
