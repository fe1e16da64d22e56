"""The fault suite (tests.helpers.faults) in CI: each case injected a few times against real worker
processes on PostgreSQL and Redis; `bench/faults.py` runs the same cases many more times."""

import os

import pytest

from tests.helpers.faults import CASES, Rig

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.redis]

# How many times CI injects each fault; a case not named here is injected once.
CI_COUNTS = {"backlog_held_by_stop": 5}


@pytest.fixture
def rig(start_worker, tmp_path) -> Rig:  # type: ignore[no-untyped-def]
    import redis

    return Rig(
        start=start_worker,
        broker=redis.Redis.from_url(os.environ["REDIS_URL"]),
        mail_dir=tmp_path / "workers" / "mail",
        backlog=200,
        broker_down_seconds=3,
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_nothing_is_lost_or_doubled(rig: Rig, case: str) -> None:
    line = CASES[case](rig, CI_COUNTS.get(case, 1))
    print(line)  # the bench's line, shown with -s or when the test fails
    assert line.found.proposals > 0
    assert (line.found.lost, line.found.doubled, line.found.wrong_value) == (0, 0, 0), line
    assert line.found.follow_ups > 0 and line.found.follow_ups_sent_once == line.found.follow_ups, line
    assert line.ok, line
