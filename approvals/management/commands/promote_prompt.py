from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.management.arguments import add_user_argument, user_named, workflow_named
from approvals.readiness.prompts import prompt_version_promote
from core.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Promote a prompt version of a live workflow past the canary cap: its approved proposals that waited "
        "are queued to apply. Only the workflow's owner promotes; the promotion is on the trail."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workflow", metavar="SLUG", required=True, help="the workflow")
        parser.add_argument("--prompt-version", metavar="V", required=True, help="the prompt version to promote")
        add_user_argument(parser, required=True, help="the person promoting it: the workflow's owner")

    def handle(self, *args: object, **options: object) -> None:
        workflow = workflow_named(str(options["workflow"]))
        user = user_named(str(options["user"]))
        version = str(options["prompt_version"])
        try:
            prompt_version_promote(workflow=workflow, prompt_version=version, user=user)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            f"Promoted prompt version {version} of {workflow.slug}: it is no longer held to the canary cap, "
            "and its approved proposals are queued to apply."
        )
