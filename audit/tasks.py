"""Scheduled work on the trail and what it keeps."""

import dataclasses
import logging
from typing import Any

from celery import shared_task

from audit.anchors import anchor_write
from audit.retention import artifacts_purge_expired

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
