"""A built-in store that a given value poisons, bound in a worker process by `poisoned_settings`
(through `poisoned_app`).

Writing POISON to any field ends the worker process on the spot (`os._exit`), as a segfault in a
driver or the out-of-memory killer would: no exception, no clean-up, no acknowledgement. Every other
write is the built-in store's own, so nothing about the proposal tells the code under test what is
coming.
"""

import os
from typing import Any

from records.store import RecordRef, RecordState
from records.store.builtin import BuiltinWrite, DjangoRecordStore

POISON = "13 Poison Row, Leith"


class PoisonedStore(DjangoRecordStore):
    def _maybe_end_process(self, values: dict[str, Any]) -> None:
        if POISON in values.values():
            os._exit(70)

    def write(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> RecordState:
        self._maybe_end_process(values)
        return super().write(ref, values, expected_version)

    def write_query(self, ref: RecordRef, values: dict[str, Any], expected_version: int) -> BuiltinWrite:
        self._maybe_end_process(values)
        return super().write_query(ref, values, expected_version)
