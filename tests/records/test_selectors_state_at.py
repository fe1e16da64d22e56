from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from records.models import Change, ChangeAction
from records.selectors import record_state_at
from records.store import RecordRef, get_store
from tests.helpers.factories import CustomerFactory
from tests.helpers.trail import apply_hide, apply_update, revert

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def _ref(customer) -> RecordRef:  # type: ignore[no-untyped-def]
    return RecordRef("customer", customer.record_id)


def test_state_at_walks_back_the_changes_made_since(db):
    ref = _ref(CustomerFactory(shipping_address="4 Old Mill Lane", priority="normal"))
    apply_update(ref, {"shipping_address": "12 Harbour Road"}, at=T0 + timedelta(minutes=14, seconds=7))
    apply_update(ref, {"priority": "high", "shipping_address": "1 Quay"}, at=T0 + timedelta(minutes=30))

    before_any = record_state_at(ref=ref, at=T0)
    assert before_any.values["shipping_address"] == "4 Old Mill Lane"
    assert before_any.values["priority"] == "normal"
    assert before_any.version == 1
    assert before_any.last_change is None

    at_214 = record_state_at(ref=ref, at=T0 + timedelta(minutes=15))
    assert at_214.values["shipping_address"] == "12 Harbour Road"
    assert at_214.values["priority"] == "normal"
    assert at_214.version == 2
    assert at_214.last_change is not None and at_214.last_change.after == {"shipping_address": "12 Harbour Road"}
    assert [c.version_after for c in at_214.changes_since] == [3]

    now = record_state_at(ref=ref, at=T0 + timedelta(hours=1))
    assert now.values == get_store(ref.record_type).fetch(ref).values


def test_a_change_applied_exactly_at_the_moment_counts_as_done(db):
    ref = _ref(CustomerFactory(shipping_address="4 Old Mill Lane"))
    moment = T0 + timedelta(minutes=14, seconds=7, milliseconds=250)
    apply_update(ref, {"shipping_address": "12 Harbour Road"}, at=moment)
    assert record_state_at(ref=ref, at=moment).values["shipping_address"] == "12 Harbour Road"
    assert record_state_at(ref=ref, at=moment - timedelta(milliseconds=1)).values["shipping_address"] == (
        "4 Old Mill Lane"
    )


def test_archive_and_delete_hide_the_record_and_their_undo_shows_it_again(db):
    ref = _ref(CustomerFactory())
    archived = apply_hide(ref, ChangeAction.ARCHIVE, at=T0 + timedelta(minutes=1))
    revert(archived, at=T0 + timedelta(minutes=2))
    apply_hide(ref, ChangeAction.DELETE, at=T0 + timedelta(minutes=3))

    assert not record_state_at(ref=ref, at=T0).hidden
    at_1 = record_state_at(ref=ref, at=T0 + timedelta(minutes=1, seconds=30))
    assert (at_1.archived, at_1.deleted) == (True, False)
    at_2 = record_state_at(ref=ref, at=T0 + timedelta(minutes=2, seconds=30))
    assert (at_2.archived, at_2.deleted) == (False, False)
    at_3 = record_state_at(ref=ref, at=T0 + timedelta(minutes=3, seconds=30))
    assert (at_3.archived, at_3.deleted) == (False, True)


def test_visibility_kept_as_times_and_values_kept_as_a_full_snapshot_are_read_too(db):
    customer = CustomerFactory(shipping_address="12 Harbour Road", archived_at=T0 + timedelta(minutes=5), version=2)
    ref = _ref(customer)
    Change.objects.create(
        record_type="customer",
        record_id=customer.record_id,
        action=ChangeAction.MERGE,
        before={"values": {"shipping_address": "4 Old Mill Lane"}, "archived_at": None, "deleted_at": None},
        after={"values": {"shipping_address": "12 Harbour Road"}, "archived_at": "2026-11-27T14:05:00+00:00"},
        version_before=1,
        version_after=2,
        applied_at=T0 + timedelta(minutes=5),
        applied_by="worker",
    )
    then = record_state_at(ref=ref, at=T0)
    assert then.values["shipping_address"] == "4 Old Mill Lane"
    assert not then.archived
    assert then.version == 1


def test_state_at_takes_three_queries_whatever_the_history(db, django_assert_num_queries):
    ref = _ref(CustomerFactory())
    for minute in range(12):
        apply_update(ref, {"priority": ["low", "high"][minute % 2]}, at=T0 + timedelta(minutes=minute))
    with django_assert_num_queries(3):
        record_state_at(ref=ref, at=T0)


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["update", "update", "update", "revert", "archive", "delete"]),
        st.integers(min_value=0, max_value=90_000),  # milliseconds since the step before; 0 is a tie
        st.sampled_from(["4 Old Mill Lane", "12 Harbour Road", "1 Quay", ""]),
        st.sampled_from(["low", "normal", "high", "urgent"]),
        st.lists(st.sampled_from(["vip", "late", "fraud-check"]), max_size=3, unique=True),
        st.integers(min_value=0, max_value=50),
    ),
    min_size=1,
    max_size=12,
)


def _real(ref: RecordRef) -> tuple[dict, bool, bool, int]:
    state = get_store(ref.record_type).fetch(ref)
    return state.values, state.archived, state.deleted, state.version


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS, probes=st.lists(st.integers(min_value=-1_000, max_value=1_200_000), max_size=8))
def test_state_at_any_moment_is_what_the_record_really_held(operations, probes):
    """Across random applies, undos, archives and deletes, the rebuilt state equals the real one."""
    ref = _ref(CustomerFactory())
    moment = T0
    history = [(moment - timedelta(days=1), _real(ref))]
    applied: list[Change] = []
    for kind, gap_ms, address, priority, tags, pick in operations:
        moment += timedelta(milliseconds=gap_ms)
        state = get_store(ref.record_type).fetch(ref)
        if kind == "update":
            applied.append(
                apply_update(ref, {"shipping_address": address, "priority": priority, "tags": tags}, at=moment)
            )
        elif kind == "revert" and applied:
            target = applied[pick % len(applied)]
            target_undone = Change.objects.filter(reverts=target).exists()
            still_holds = all(state.values.get(k) == v for k, v in target.after.items()) or target.action in (
                ChangeAction.ARCHIVE,
                ChangeAction.DELETE,
            )
            if target_undone or not still_holds:
                continue
            revert(target, at=moment)
        elif kind in ("archive", "delete") and not (state.archived if kind == "archive" else state.deleted):
            applied.append(apply_hide(ref, kind, at=moment))
        else:
            continue
        history.append((moment, _real(ref)))

    checkpoints = [at for at, _ in history] + [T0 + timedelta(milliseconds=ms) for ms in probes]
    for at in checkpoints:
        expected = [real for when, real in history if when <= at][-1]
        rebuilt = record_state_at(ref=ref, at=at)
        assert (rebuilt.values, rebuilt.archived, rebuilt.deleted, rebuilt.version) == expected, f"at {at}"
