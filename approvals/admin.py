from django.contrib import admin

from approvals.models import Batch, FieldPolicy, Proposal, RetentionRule, ServiceAccount, StopSwitch, Workflow
from core.admin import ForThoseWhoSeeEverything


class ViewOnly:
    """Shown in the admin, changed only through the services that check and audit each change
    (`load_workflows`, the service-account and stop-switch commands and screens)."""

    def has_add_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


class FieldPolicyInline(ViewOnly, admin.TabularInline):
    model = FieldPolicy
    extra = 0


class RetentionRuleInline(ViewOnly, admin.TabularInline):
    model = RetentionRule
    extra = 0


@admin.register(Workflow)
class WorkflowAdmin(ViewOnly, admin.ModelAdmin):
    list_display = ["slug", "name", "lane", "stage", "owner", "approver_group"]
    list_filter = ["lane", "stage"]
    search_fields = ["slug", "name"]
    # A stage moves only through the readiness gate (the workflow file, the readiness page), whatever
    # else this page may one day be allowed to change.
    readonly_fields = ["stage", "stage_changed_at", "forced_stage"]
    inlines = [FieldPolicyInline, RetentionRuleInline]


@admin.register(ServiceAccount)
class ServiceAccountAdmin(ForThoseWhoSeeEverything, ViewOnly, admin.ModelAdmin):
    list_display = ["name", "workflow", "token_prefix", "created_at", "expires_at", "revoked_at", "last_used_at"]
    readonly_fields = ["token_prefix", "token_hash", "last_used_at"]
    list_filter = ["workflow"]


@admin.register(Proposal)
class ProposalAdmin(ForThoseWhoSeeEverything, ViewOnly, admin.ModelAdmin):
    list_display = ["id", "workflow", "record_type", "record_id", "action", "status", "created_at"]
    list_filter = ["status", "action", "workflow"]
    search_fields = ["record_id", "run_id", "prompt_version"]
    list_select_related = ["workflow"]  # decisions go through the review screen, where they are checked and audited


@admin.register(Batch)
class BatchAdmin(ForThoseWhoSeeEverything, ViewOnly, admin.ModelAdmin):
    list_display = ["id", "name", "workflow", "run_id", "expected_size", "created_at"]


@admin.register(StopSwitch)
class StopSwitchAdmin(ForThoseWhoSeeEverything, ViewOnly, admin.ModelAdmin):
    list_display = ["target", "reason", "engaged_by_label", "engaged_at", "released_at"]
