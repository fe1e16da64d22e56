from django.core.management.base import BaseCommand, CommandError

from audit.services import audit_verify_chain


class Command(BaseCommand):
    help = "Walk the audit hash chain from the start; exit non-zero at the first broken link, naming it."

    def handle(self, *args: object, **options: object) -> None:
        checked, broken = audit_verify_chain()
        if broken is not None:
            raise CommandError(
                f"audit chain broken at event #{broken.event_id}: {broken.problem} "
                f"({checked} event(s) before it verified)"
            )
        self.stdout.write(f"Audit chain verified: {checked} event(s), no broken link.")
