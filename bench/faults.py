"""The fault suite, on PostgreSQL and Redis: each queue fault injected several times, one line each.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/NAME REDIS_URL=redis://127.0.0.1:6379/N \\
        .venv/bin/python bench/faults.py [--count N] [--backlog 5000] [--broker-down 30] [--case NAME ...]

In a scratch database (NAME_faults, created here and dropped at the end), with real worker processes
(tests.helpers.worker). The broker is Redis database N, which the run empties between cases and
which one case flushes on purpose (FLUSHDB): give it a database number nothing else uses.

The cases are in tests/helpers/faults.py, where CI runs them too (tests/approvals/faults/): `kill -9`
of a worker mid-batch, the broker's Redis flushed mid-batch, the stop switch engaged mid-batch, a
backlog held by a stop across sweeps, the broker down (`--broker-down` seconds) while a pipeline
submits and a person approves, the worker's database session terminated mid-write, a record row
held past the worker's lock_timeout, and a poison proposal that ends its worker process. For each,
one line: the fault, how many times it was injected, what should hold, what did (per proposal:
applied exactly once, lost, doubled, wrong value; follow-ups sent once; what the case counts
besides), and the time to recover. `--count` injects every case that many times instead of its own
default.
"""

import argparse
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.seeding import recreate, scratch_database  # noqa: E402

# How many times each case is injected; a case not named here, three times.
COUNTS = {
    "kill_9_mid_batch": 10,
    "broker_flushed_mid_batch": 5,
    "stop_mid_batch": 5,
    "backlog_held_by_stop": 5,
    "database_backend_terminated_mid_write": 10,
    "broker_down_during_intake_and_approval": 3,
    "row_lock_past_lock_timeout": 3,
    "poison_proposal_kills_its_worker": 3,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, help="inject every case this many times (default: each its own)")
    parser.add_argument("--backlog", type=int, default=5000, help="approved proposals the stop holds")
    parser.add_argument("--case", action="append", help="run only this case (repeatable)")
    parser.add_argument("--broker-down", type=float, default=30, help="seconds the broker is down, each time")
    args = parser.parse_args()

    if not os.environ.get("REDIS_URL"):
        raise SystemExit("bench/faults.py needs REDIS_URL=redis://... (the production broker)")
    url, admin_url, name = scratch_database(os.environ.get("DATABASE_URL", ""), "_faults")
    recreate(admin_url, name)
    quiet = {"DEBUG": "false", "LOG_LEVEL": "WARNING"}
    os.environ.update({"DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings.local", **quiet})

    import django

    django.setup()
    # The broker-down case sends its requests through the middleware, on settings that never ran
    # collectstatic: WhiteNoise's word about the missing folder is not the bench's.
    warnings.filterwarnings("ignore", message="No directory at: ", category=UserWarning)
    import redis
    from django.core.management import call_command
    from django.db import connections

    from audit.services import audit_verify_chain
    from tests.helpers.faults import CASES, Rig
    from tests.helpers.worker import CeleryWorker, purge_broker

    unknown = set(args.case or []) - set(CASES)
    if unknown:
        raise SystemExit(f"no such case: {', '.join(sorted(unknown))} (cases: {', '.join(sorted(CASES))})")
    log_dir = Path(tempfile.mkdtemp(prefix="countersign-faults-"))
    started: list[CeleryWorker] = []

    def start(**options: Any) -> CeleryWorker:
        options.setdefault("settings_module", "config.settings.local")  # a case may name its own
        worker = CeleryWorker(
            database_url=url,
            log_dir=log_dir,
            name=f"faults-worker-{len(started) + 1}",
            **{**options, "env": {**quiet, **options.get("env", {})}},
        )
        started.append(worker)
        return worker.start(timeout=120)

    rig = Rig(
        start=start,
        broker=redis.Redis.from_url(os.environ["REDIS_URL"]),
        mail_dir=log_dir / "mail",
        backlog=args.backlog,
        broker_down_seconds=args.broker_down,
    )
    failed = False
    try:
        call_command("migrate", verbosity=0)
        for case in args.case or sorted(CASES):
            count = args.count or COUNTS.get(case, 3)
            print(f"{case} x{count} ...", flush=True)
            purge_broker()
            try:
                line = CASES[case](rig, count)
            finally:
                rig.stop_workers()
            failed = failed or not line.ok
            print(line, flush=True)
        checked, broken = audit_verify_chain()
        print(f"audit chain: {checked} events, {'intact' if broken is None else f'BROKEN at {broken}'}")
        failed = failed or broken is not None
    finally:
        rig.stop_workers()
        purge_broker()
        shutil.rmtree(log_dir, ignore_errors=True)
        connections.close_all()
        recreate(admin_url, name, create=False)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
