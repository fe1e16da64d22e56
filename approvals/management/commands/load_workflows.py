from pathlib import Path
from typing import Any

import yaml
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.workflows.loading import workflows_load
from audit.services import Actor
from core.errors import ValidationFailed


def _person(name: str | None, option: str) -> Any:
    if name is None:
        return None
    user_model = get_user_model()
    person = user_model.objects.filter(**{user_model.USERNAME_FIELD: name, "is_active": True}).first()
    if person is None:
        raise CommandError(f"{option} {name}: no active user of that name; nothing loaded")
    return person


class Command(BaseCommand):
    help = "Create or update workflows, field policies, groups and retention rules from a YAML file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--user",
            dest="user",
            metavar="NAME",
            help="who loads the file; a change to a retention rule is proposed in their name and waits for "
            "the rules' other owner",
        )
        parser.add_argument(
            "--countersigned-by",
            dest="countersigned_by",
            metavar="NAME",
            help="the other owner of the retention rules, who already countersigned the file's retention "
            "changes: they take effect at once",
        )

    def handle(self, *args: object, file: Path, **options: Any) -> None:
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        try:
            document = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise CommandError(f"{file}: not readable YAML: {error}") from None
        user = _person(options.get("user"), "--user")
        countersigned_by = _person(options.get("countersigned_by"), "--countersigned-by")
        actor = Actor.user(user) if user is not None else Actor.system("load_workflows")
        try:
            result = workflows_load(document=document, actor=actor, user=user, countersigned_by=countersigned_by)
        except ValidationFailed as error:
            lines = "\n".join(f"{file}: {where}: {message}" for where, message in error.problems)
            raise CommandError(f"nothing loaded:\n{lines}") from None
        for outcome in ("created", "updated", "unchanged"):
            slugs = getattr(result, outcome)
            if slugs:
                self.stdout.write(f"{outcome}: {', '.join(slugs)}")
        for line in result.retention_waiting:
            self.stdout.write(f"retention change waiting for its second owner: {line}")
