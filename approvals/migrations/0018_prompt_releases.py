"""Prompt versions already in use when releases began to be noted are released: each distinct
(workflow, prompt version) of the proposals is noted promoted now, by nobody, so none of them is
held to the canary cap."""

from django.db import migrations
from django.db.models import Min
from django.utils import timezone

CHUNK = 1000


def release_versions_in_use(apps, schema_editor):  # type: ignore[no-untyped-def]
    Proposal = apps.get_model("approvals", "Proposal")
    PromptRelease = apps.get_model("approvals", "PromptRelease")
    now = timezone.now()
    pairs = (
        Proposal.objects.exclude(prompt_version="")
        .order_by()
        .values("workflow_id", "prompt_version")
        .annotate(first_seen_at=Min("created_at"))
        .values_list("workflow_id", "prompt_version", "first_seen_at")
    )
    releases = [
        PromptRelease(workflow_id=workflow_id, prompt_version=version, first_seen_at=first_seen, promoted_at=now)
        for workflow_id, version, first_seen in pairs.iterator()
    ]
    PromptRelease.objects.bulk_create(releases, batch_size=CHUNK, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [
        ("approvals", "0017_trace_drill_one_open"),
    ]

    operations = [
        migrations.RunPython(release_versions_in_use, migrations.RunPython.noop),
    ]
