"""The registry of audit actions. An event with a name not listed here is refused."""

ACTIONS: dict[str, str] = {
    # proposals
    "proposal.submitted": "A pipeline submitted a proposal",
    "proposal.approved": "A person approved a proposal (or the policy approved it without review)",
    "proposal.approval_recorded": "The first of two required approvals was given",
    "proposal.rejected": "A person rejected a proposal",
    "proposal.expired": "A pending proposal expired unreviewed: nobody decided it within its workflow's expire_after",
    "proposal.cancelled": "A pending proposal was cancelled: its batch was discarded",
    "proposal.conflict": "The record no longer held what the AI saw; nothing was written",
    "proposal.failed": "Applying kept failing; the proposal was given up",
    "proposal.shadowed": "A shadow-stage workflow recorded a proposal that will never apply",
    "proposal.decision_refused": "Security: a decision was refused (self-approval, no permission, stale, unseen)",
    "proposal.artifact_flagged": "An artifact held a value of a field the workflow may not read",
    "proposal.reverted": "The change a proposal made was undone",
    "proposal.reapplied": "An undo was itself undone: the proposal's change is in force again",
    "proposal.shadow_verdict": "A reviewer said whether they would approve or reject a shadowed proposal",
    "proposal.forced": "A person on override duty chose to write a proposal in conflict over the current values",
    # changes
    "change.applied": "A change was written to a record",
    "change.reverted": "A change was undone",
    # bulk undo and the rollback drill
    "undo.started": "A bulk undo started (a batch, a workflow since a time, or a prompt version)",
    "undo.finished": "A bulk undo finished",
    "undo.cancelled": "A bulk undo was cancelled part-way",
    "drill.completed": "A rollback drill ran (passed or failed)",
    # the trace drill
    "trace_drill.started": "A timed trace drill started: a person was given a complaint about one applied change",
    "trace_drill.finished": "A trace drill ended: answered (passed or failed, how long, what was wrong) or replaced",
    # the five-step review of a workflow before release
    "review.started": "A five-step review of a workflow was started",
    "review.step_ticked": "A step of a five-step review was ticked by the person who did it",
    "review.change_chosen": "The applied change a five-step review walks through was chosen",
    "review.fields_marked": "A five-step review marked each field read, suggest or write",
    "review.decided": "A five-step review decided the workflow ready or not ready",
    "review.signed": "A person signed a five-step review",
    "review.signed_off": "A five-step review was signed off by two people, one of them the workflow's owner",
    # batches
    "batch.opened": "A pipeline opened a batch",
    "batch.discarded": "A person or the batch's pipeline discarded a batch: its pending proposals were cancelled",
    # stop switch
    "stop.engaged": "A stop switch was engaged",
    "stop.released": "A stop switch was released",
    # overrides
    "override.granted": "An override was granted",
    "override.used": "An override lifted a block",
    "override.expired": "An override expired",
    "override.revoked": "An override was revoked",
    "override.acknowledged": "An override was acknowledged in the morning review",
    "override.flagged": "An override was flagged in the morning review",
    # configuration
    "workflow.created": "A workflow was created",
    "workflow.changed": "A workflow's settings changed",
    "workflow.promoted": "A workflow moved to a later stage with every readiness check for that stage passing",
    "workflow.stage_forced": "A workflow was moved to a later stage against failing readiness checks, with a reason",
    "policy.changed": "A field policy changed",
    "retention.changed": "A retention rule changed (a countersigned change names its proposer and countersigner)",
    "retention.change_proposed": "An owner of the retention rules proposed a change; it waits for the other owner",
    "retention.change_withdrawn": "A retention change waiting for its second owner was withdrawn",
    "retention.change_rejected": "The other owner of the retention rules rejected a change waiting for them",
    "prompt.promoted": "A workflow's owner promoted a prompt version past the canary cap",
    "store.configured": "A record type was bound to a system of record, or its binding changed (the stores file)",
    # artifacts
    "artifact.stored": "An artifact was stored",
    "artifacts.purged": "Expired artifacts were purged under their retention rules (one tombstone each)",
    "artifact.training_requested": "A training copy of an artifact was requested",
    "artifact.training_decided": "A training copy request was decided",
    # follow-ups
    "followup.sent": "A follow-up ran",
    "followup.cancelled": "A follow-up was cancelled before it ran",
    "followup.failed": "A follow-up failed",
    "followup.unknown": "A follow-up's sending was never reported back: it may have arrived, so it is not sent again",
    # outcome callbacks
    "callback.failed": "An outcome callback to a pipeline could not be delivered after every retry",
    # access
    "access.granted": "A person was added to a group, or made staff or superuser",
    "access.revoked": "A person was removed from a group, or is no longer staff or superuser",
    "token.created": "A service account token was created",
    "token.revoked": "A service account token was revoked",
    "login.failed": "Security: a failed login (recorded before sign-in throttling; now counted by the lockout)",
    "login.locked_out": "Security: sign-in for a user name from one address paused after repeated failures",
    "audit.broken": "Security: the scheduled verification found the audit chain broken (which event, and how)",
    "trail.exported": "A person exported the trail (who, the filter, how many rows the file holds)",
    # records
    "record.imported": "Records were imported from a file",
    "record.changed_outside": "A record held outside Countersign was changed there, not through Countersign",
    # stores
    "store.unreachable": "A record type's store stopped answering: its approved changes wait",
    "store.reachable": "A record type's store answered again",
}


def is_known(action: str) -> bool:
    return action in ACTIONS
