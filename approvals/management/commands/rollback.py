import getpass
import sys
import uuid
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from approvals.management.arguments import add_user_argument, batch_numbered, operator_from, workflow_named
from approvals.models import StopSwitch, UndoItemOutcome, UndoJob, UndoJobItem, UndoScope
from approvals.stops.selectors import batch_left_to_hold
from approvals.undo.selectors import UndoSelection, undo_plan
from approvals.undo.services import UndoResult, undo_change, undo_job_run, undo_job_start
from audit.services import Actor
from core.errors import ApplicationError
from core.timeutils import parse_window
from records.models import Change
from records.services.revert import RevertConflict, RevertOutcome, RevertPart, changes_revert_preview


def parse_time(text: str, *, option: str) -> datetime:
    """An ISO 8601 time (UTC when it names no zone), or a window back from now such as 90m, 12h or 7d."""
    try:
        return timezone.now() - parse_window(text)
    except ValueError:
        pass
    moment = parse_datetime(text.strip())
    if moment is None:
        raise CommandError(f"{option}: '{text}' is neither a time such as 2026-11-27T14:00 nor a window such as 90m")
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def describe(part: RevertPart) -> str:
    line = (
        f"{part.record.record_type} {part.record.record_id} {part.field}: "
        f"before {part.before!r}, we wrote {part.written!r}, now {part.now!r}"
    )
    return f"{line} ({part.note})" if part.note else line


class Command(BaseCommand):
    help = (
        "Undo a change, a batch, a workflow's changes since a time, or every change under one prompt version. "
        "Records that changed since are left alone and printed as conflicts; the command then exits 1."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        scope = parser.add_mutually_exclusive_group(required=True)
        scope.add_argument("--change", metavar="ID", help="one change (its id, a UUID)")
        scope.add_argument("--batch", metavar="ID", type=int, help="every change of a batch")
        scope.add_argument("--workflow", metavar="SLUG", help="a workflow's changes since --since")
        scope.add_argument("--prompt-version", metavar="V", help="every change made under this prompt version")
        parser.add_argument(
            "--since", metavar="TIME", help="ISO time (UTC unless it says) or a window back: 90m, 12h, 7d"
        )
        parser.add_argument("--until", metavar="TIME", help="end of the window (same forms as --since)")
        parser.add_argument("--field", action="append", metavar="NAME", help="with --change: undo only these parts")
        parser.add_argument("--dry-run", action="store_true", help="say what would happen; write nothing")
        parser.add_argument("--reason", default="", help="why (kept in the trail; required for a bulk undo)")
        add_user_argument(parser, help="the person undoing (their permissions apply)")
        parser.add_argument(
            "--queue", action="store_true", help="hand a bulk undo to a worker instead of running it here"
        )

    def handle(self, *args: object, **options: object) -> None:
        operator = operator_from(options)
        user, actor = operator.user, operator.actor
        if options["change"]:
            self.one_change(str(options["change"]), options, user, actor)
            return
        selection = self.selection(options)
        if options["dry_run"]:
            self.dry_run(selection)
            return
        self.bulk(selection, options, user, actor)

    def bulk(self, selection: UndoSelection, options: dict, user, actor: Actor) -> None:  # type: ignore[no-untyped-def]
        try:
            job = undo_job_start(
                selection=selection, actor=actor, user=user, reason=str(options["reason"]), queue=bool(options["queue"])
            )
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"Undo job {job.pk}: {job.total} change(s) in {selection.describe()}, newest first.")
        if job.stop_id:
            self.stdout.write(f"Batch {job.batch_id} is stopped (switch {job.stop_id}) while the undo runs.")
        if options["queue"]:
            self.stdout.write(f"Queued for a worker. Follow it at /undo/jobs/{job.pk}/")
            return
        job = undo_job_run(job_id=job.pk, worker=f"cli:{getpass.getuser()}", on_progress=self.progress)
        self.report(job)

    def selection(self, options: dict) -> UndoSelection:
        since = parse_time(str(options["since"]), option="--since") if options["since"] else None
        until = parse_time(str(options["until"]), option="--until") if options["until"] else None
        if options["batch"]:
            return UndoSelection(scope=UndoScope.BATCH, batch=batch_numbered(options["batch"]))
        if options["workflow"]:
            workflow = workflow_named(options["workflow"])
            if since is None:
                raise CommandError("--workflow needs --since: from when are its changes undone?")
            return UndoSelection(scope=UndoScope.WORKFLOW, workflow=workflow, since=since, until=until)
        return UndoSelection(
            scope=UndoScope.PROMPT_VERSION, prompt_version=str(options["prompt_version"]), since=since, until=until
        )

    def one_change(self, change_id: str, options: dict, user, actor: Actor) -> None:  # type: ignore[no-untyped-def]
        change = _change(change_id)
        fields = options["field"]
        if options["dry_run"]:
            self.one_change_dry_run(change, fields)
            return
        try:
            result = undo_change(change=change, actor=actor, user=user, fields=fields, reason=str(options["reason"]))
        except RevertConflict as conflict:
            for part in conflict.result.conflicts:
                self.stdout.write(f"CONFLICT {describe(part)}")
            self.stderr.write(
                f"Change {change.id} was not undone: its record changed since. Nothing was written. "
                "Undo only the other fields with --field, or leave the record alone."
            )
            sys.exit(1)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.undone(result)

    def one_change_dry_run(self, change: Change, fields: list[str] | None) -> None:
        [preview] = changes_revert_preview(changes=[change], fields={change.id: fields} if fields else None)
        if preview.outcome == RevertOutcome.ALREADY_UNDONE:
            self.stdout.write(f"Already undone by change {preview.undone_by}.")
            return
        for part in preview.parts:
            chosen = fields is None or part.key in fields
            mark = "CONFLICT" if part.conflict else ("restore " if chosen else "leave   ")
            self.stdout.write(f"{mark} {describe(part)}")
        if any(part.conflict for part in preview.parts if fields is None or part.key in fields):
            sys.exit(1)

    def undone(self, result: UndoResult) -> None:
        self.stdout.write(f"Undone: change {result.change.id} by change {result.revert.id}.")
        for name, value in result.revert.after.items():
            self.stdout.write(f"  {name} restored to {value!r}")
        for move in (result.revert.merge_payload or {}).get("moved", []):
            self.stdout.write(f"  {move['record_type']} {move['record_id']} {move['field']} back to {move['to']}")
        for part in result.left:
            self.stdout.write(f"  left as it is: {describe(part)}")
        for row in result.cancelled:
            self.stdout.write(f"  follow-up cancelled: {row.kind} {row.params.get('template', '')}".rstrip())
        for row in result.not_retractable:
            self.stdout.write(f"  follow-up {row.kind} {row.params.get('template', '')}: sent — cannot be retracted")

    def dry_run(self, selection: UndoSelection) -> None:
        plan = undo_plan(selection=selection)
        self.stdout.write(f"Dry run: {selection.describe()}")
        self.stdout.write(f"  {plan.total} change(s) to undo, newest first ({plan.already_undone} already undone)")
        self.stdout.write(f"  {plan.would_revert} would be restored, {len(plan.conflicts)} conflict(s)")
        self.stdout.write(
            f"  follow-ups: {len(plan.followups.to_cancel)} would be cancelled, "
            f"{len(plan.followups.not_retractable)} sent — cannot be retracted"
        )
        for row in plan.followups.not_retractable:
            self.stdout.write(f"  SENT {row.kind} for {row.proposal.record_type} {row.proposal.record_id}")
        for result in plan.conflicts:
            for part in result.conflicts or []:
                self.stdout.write(f"CONFLICT {describe(part)}")
            if not result.conflicts:
                self.stdout.write(f"CONFLICT {result.change.record_type} {result.change.record_id}: {result.detail}")
        if plan.conflicts:
            sys.exit(1)

    def progress(self, job: UndoJob) -> None:
        self.stdout.write(f"  {job.done}/{job.total} done, {job.conflicts} conflict(s)")

    def report(self, job: UndoJob) -> None:
        self.stdout.write(
            f"Undo job {job.pk} {job.status}: {job.reverted} undone, {job.conflicts} conflict(s), "
            f"{job.skipped} already undone, {job.failed} failed; follow-ups {job.followups_cancelled} cancelled, "
            f"{job.followups_not_retractable} sent — cannot be retracted."
        )
        left = job.items.filter(outcome__in=[UndoItemOutcome.CONFLICT, UndoItemOutcome.FAILED]).order_by("position")
        for item in left:
            for line in item_lines(item):
                self.stdout.write(line)
        if job.stop_id and job.batch_id:
            self.stdout.write(stop_after_undo(stop_id=job.stop_id, batch_id=job.batch_id))
        if job.conflicts or job.failed:
            sys.exit(1)


def stop_after_undo(*, stop_id: int, batch_id: int) -> str:
    """What became of the stop an undo job engaged on its batch once the job ended."""
    stop = StopSwitch.objects.get(pk=stop_id)
    if stop.released_at is not None:
        return f"Released the stop on batch {batch_id}: nothing of the batch was left for it to hold."
    held = batch_left_to_hold(batch_id=batch_id)
    still = f": {held.describe()} would go through once it is released" if not held.nothing else ""
    return f"Batch {batch_id} stays stopped (switch {stop.pk}){still}. A person releases it."


def _change(change_id: str) -> Change:
    try:
        change = Change.objects.filter(pk=uuid.UUID(change_id)).first()
    except ValueError:
        raise CommandError(f"--change: '{change_id}' is not a change id (a UUID)") from None
    if change is None:
        raise CommandError(f"--change: no change {change_id}")
    return change


def item_lines(item: UndoJobItem) -> list[str]:
    """What a bulk undo left for one record: the failure, or each field in conflict."""
    lines = []
    if item.outcome == UndoItemOutcome.FAILED:
        lines.append(f"FAILED {item.record_type} {item.record_id}: {item.detail.get('error')}")
    for part in item.detail.get("conflicts", []):
        line = (
            f"CONFLICT {part['record_type']} {part['record_id']} {part['field']}: before {part['before']!r},"
            f" we wrote {part['written']!r}, now {part['now']!r}"
        )
        lines.append(f"{line} ({part['note']})" if part.get("note") else line)
    if item.outcome == UndoItemOutcome.CONFLICT and not item.detail.get("conflicts"):
        lines.append(f"CONFLICT {item.record_type} {item.record_id}: {item.detail.get('detail')}")
    return lines
