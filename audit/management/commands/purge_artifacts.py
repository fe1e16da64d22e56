from django.core.management.base import BaseCommand, CommandError, CommandParser

from audit.retention import artifacts_purge_expired


class Command(BaseCommand):
    help = "Purge expired artifacts now, leaving a tombstone in the trail for each (beat runs this every minute)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=1000, help="artifacts per transaction (default 1000)")

    def handle(self, *args: object, batch_size: int, **options: object) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        report = artifacts_purge_expired(batch_size=batch_size)
        if not report.purged:
            self.stdout.write("Nothing had expired; nothing was purged.")
            return
        self.stdout.write(
            f"Purged {report.purged} expired artifact(s) in {report.batches} batch(es), "
            f"{report.files} stored file(s) removed, in {report.seconds:.2f}s "
            f"(longest batch {report.longest_batch_seconds * 1000:.0f} ms). Each left a tombstone in the trail."
        )
