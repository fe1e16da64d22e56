from django.contrib import admin

from core.admin import ForThoseWhoSeeEverything
from records.models import Change, Customer, Order, Ticket


class ReadOnlyAdmin(ForThoseWhoSeeEverything, admin.ModelAdmin):
    """Records change only through a Change; the admin shows them, to those who see everything, and
    nothing more."""

    def has_add_permission(self, request):  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None):  # type: ignore[no-untyped-def]
        return False


@admin.register(Customer)
class CustomerAdmin(ReadOnlyAdmin):
    list_display = ["record_id", "full_name", "email", "account_status", "version"]
    search_fields = ["record_id", "full_name", "email"]


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ["record_id", "order_number", "customer", "amount", "status", "refund_status", "version"]
    search_fields = ["record_id", "order_number"]
    list_select_related = ["customer"]


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = ["record_id", "subject", "customer", "status", "priority", "version"]
    search_fields = ["record_id", "subject"]
    list_select_related = ["customer"]


@admin.register(Change)
class ChangeAdmin(ReadOnlyAdmin):
    list_display = ["id", "record_type", "record_id", "action", "applied_at", "applied_by"]
    search_fields = ["record_id", "id"]
