from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.demo.seed import demo_loaded, demo_seed


class Command(BaseCommand):
    help = "Load the demo: users per role, a few hundred records, workflows in each lane and stage."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--if-empty", action="store_true", help="do nothing when the demo is already loaded")

    def handle(self, *args: object, if_empty: bool, **options: object) -> None:
        if not settings.DEBUG:
            # Each demo user's password is its name, and `owner` opens the admin: never in production.
            raise CommandError(
                "seed_demo loads demo users whose passwords are their names, so it runs only with DEBUG on "
                "(make run turns it on); nothing was loaded"
            )
        # Wherever COUNTERSIGN_VAR_DIR puts the embedded database, the tokens are kept beside it.
        token_file = Path(settings.VAR_DIR) / "demo-tokens.txt"
        if demo_loaded():
            message = "The demo data is already loaded."
            if if_empty:
                self.stdout.write(f"{message} {_where_the_tokens_are(token_file)}")
                return
            self.stderr.write(message + " Start from an empty database to load it again.")
            raise SystemExit(1)
        seeded = demo_seed()
        token_file.write_text("\n".join(seeded.tokens) + "\n")
        token_file.chmod(0o600)
        self.stdout.write(seeded.summary(token_file=token_file))


def _where_the_tokens_are(token_file: Path) -> str:
    if token_file.exists():
        return f"Pipeline tokens for the demo are in {token_file}."
    # A token is shown once, when it is issued: one lost with its file can only be replaced.
    return (
        f"Its pipeline tokens are not in {token_file}; issue a new one with "
        "manage.py create_service_account --workflow SLUG --name NAME."
    )
