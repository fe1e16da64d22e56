from django.contrib import admin

from audit.models import AuditEvent
from core.admin import ForThoseWhoSeeEverything


@admin.register(AuditEvent)
class AuditEventAdmin(ForThoseWhoSeeEverything, admin.ModelAdmin):
    list_display = ["id", "occurred_at", "action", "actor_label", "record_type", "record_id", "workflow_slug"]
    list_filter = ["action"]
    search_fields = ["record_id", "workflow_slug", "prompt_version"]

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False
