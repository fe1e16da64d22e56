"""What the trail tells the layers above it, which it cannot import: they connect when their app is ready."""

from django.dispatch import Signal

# Sent once, in the transaction that appends `audit.broken`, with `event` (that AuditEvent).
chain_broken = Signal()
