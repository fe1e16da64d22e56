from django.core.management.base import BaseCommand, CommandError

from records.services.stores import stores_check


class Command(BaseCommand):
    help = (
        "Connect to the store of each record type, read one record, and check that every mapped field "
        "exists with a compatible type. Exits non-zero on any problem."
    )

    def handle(self, *args: object, **options: object) -> None:
        failed = []
        for result in stores_check():
            check = result.check
            state = "ok" if check.ok else "reachable, with problems" if check.reachable else "UNREACHABLE"
            self.stdout.write(f"{result.record_type}: {result.connector}: {state}")
            for line in check.found:
                self.stdout.write(f"  found: {line}")
            for key, reason in check.problems:
                self.stdout.write(f"  problem: {key}: {reason}")
            if not check.ok:
                failed.append(result.record_type)
        if failed:
            raise CommandError(f"problems with the store of {', '.join(failed)}")
