"""Scheduled work on the trail and what it keeps."""

import dataclasses
import logging
from typing import Any

from celery import shared_task

from audit.anchors import anchor_write
from audit.retention import artifacts_purge_expired
from audit.services import audit_verify_incremental

logger = logging.getLogger(__name__)


@shared_task(name="audit.purge_expired_artifacts")
def purge_expired_artifacts() -> dict[str, Any]:
    """Run by beat: purge expired artifacts, leaving a tombstone for each."""
    report = artifacts_purge_expired()
    if report.purged:
        logger.info(
            "purged %d expired artifacts in %d batches (longest %.3fs)",
            report.purged,
            report.batches,
            report.longest_batch_seconds,
        )
    return dataclasses.asdict(report)


@shared_task(name="audit.write_anchor")
def write_anchor() -> dict[str, Any] | None:
    """Run by beat: append a signed checkpoint of the chain's head to the anchor sinks."""
    anchor = anchor_write()
    return dataclasses.asdict(anchor) if anchor else None


@shared_task(name="audit.verify_chain")
def verify_chain() -> dict[str, Any]:
    """Run by beat: verify the events appended since the last run; a break appends `audit.broken`."""
    check = audit_verify_incremental()
    if check.broken is not None:
        logger.error("%s", check.broken.reason)
    return {"checked": check.checked, "verified_through": check.verified_through, "broken": check.broken is not None}
