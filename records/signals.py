"""What records tells the layers above it, which it cannot import: they connect when their app is ready."""

from django.dispatch import Signal

# Sent once per outage, in the transaction that first records a record type's store as unreachable
# (not for each failure after), with `record_type`, `store`, `reason` and `since`.
store_unreachable = Signal()
