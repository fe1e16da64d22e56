"""Who may change what, and the gate: one module per subdomain, every model importable from here."""

from approvals.models.applying import FollowUp, FollowUpKind, FollowUpStatus
from approvals.models.intake import Batch, IdempotencyKey, Proposal, ProposalApproval, ProposalStatus, ServiceAccount
from approvals.models.metrics import MetricsCursor, MetricsTally
from approvals.models.notices import ConflictToTell, Notice
from approvals.models.notifying import DeliveryStatus, NoticeDelivery, UserNoticePrefs
from approvals.models.overrides import Override, OverrideBlock, OverrideReview, OverrideScope
from approvals.models.readiness import (
    Direction,
    OutsideServiceKind,
    PromptRelease,
    ReadinessReview,
    RetentionChange,
    RetentionChangeStatus,
    ReviewDecision,
    ReviewSignature,
    TraceDrill,
)
from approvals.models.retention import TrainingCopyRequest, TrainingCopyStatus
from approvals.models.shadow import ShadowVerdict, Verdict
from approvals.models.stops import StopScope, StopSwitch
from approvals.models.undo import (
    UNDO_JOB_FINISHED,
    RollbackDrill,
    UndoItemOutcome,
    UndoJob,
    UndoJobItem,
    UndoJobStatus,
    UndoScope,
)
from approvals.models.workflows import (
    WEEKDAYS,
    Access,
    Action,
    FieldPolicy,
    Lane,
    RetentionRule,
    Stage,
    Workflow,
    WorkflowGroupObjectPermission,
    WorkflowUserObjectPermission,
)

__all__ = [
    "MetricsCursor",
    "MetricsTally",
    "DeliveryStatus",
    "NoticeDelivery",
    "UserNoticePrefs",
    "Lane",
    "Stage",
    "Action",
    "Access",
    "WEEKDAYS",
    "Workflow",
    "WorkflowUserObjectPermission",
    "WorkflowGroupObjectPermission",
    "FieldPolicy",
    "RetentionRule",
    "ServiceAccount",
    "Batch",
    "ProposalStatus",
    "Proposal",
    "ProposalApproval",
    "IdempotencyKey",
    "StopScope",
    "StopSwitch",
    "OverrideScope",
    "OverrideBlock",
    "OverrideReview",
    "Override",
    "FollowUpKind",
    "FollowUpStatus",
    "FollowUp",
    "TrainingCopyStatus",
    "TrainingCopyRequest",
    "UndoScope",
    "UndoJobStatus",
    "UNDO_JOB_FINISHED",
    "UndoJob",
    "UndoItemOutcome",
    "UndoJobItem",
    "RollbackDrill",
    "Direction",
    "OutsideServiceKind",
    "TraceDrill",
    "ReviewDecision",
    "ReadinessReview",
    "ReviewSignature",
    "PromptRelease",
    "RetentionChangeStatus",
    "RetentionChange",
    "Notice",
    "ConflictToTell",
    "Verdict",
    "ShadowVerdict",
]
