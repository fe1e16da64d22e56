"""The bulk undo task: it takes a job id and runs the job to its end (or to its cancel)."""

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from approvals.jobs import worker_name
from approvals.undo.services import undo_job_run, undo_jobs_sweep


@shared_task(
    bind=True,
    name="approvals.run_undo_job",
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    max_retries=8,
)
def run_undo_job(self: Task, job_id: int) -> dict[str, int | str]:
    job = undo_job_run(job_id=int(job_id), worker=worker_name(self))
    return {"status": job.status, "done": job.done, "total": job.total, "conflicts": job.conflicts}


@shared_task(name="approvals.sweep_undo_jobs", acks_late=True)
def sweep_undo_jobs() -> int:
    """Queue again the undo jobs that stopped making progress (beat)."""
    return len(undo_jobs_sweep())
