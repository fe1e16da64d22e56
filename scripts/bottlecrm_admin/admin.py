"""An admin page for BottleCRM's support cases: the fields Countersign's demo binds, editable."""

from cases.models import Case
from django.contrib import admin


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ["name", "status", "priority", "updated_at"]
    list_filter = ["status", "priority"]
    search_fields = ["name", "description"]
    fields = ["name", "status", "priority", "description"]
    ordering = ["name"]
