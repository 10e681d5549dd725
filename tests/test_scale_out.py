"""Scale-out: two schedulers and two workers on one Postgres and one Redis
deliver a burst with nothing lost and nothing delivered twice (real processes).

The receiver does not de-duplicate, so a touch two schedulers both claimed, or
two workers both sent, shows as a key called twice."""

from __future__ import annotations

from tests.test_crash_recovery import (  # noqa: F401 - crash_env is a fixture
    Receiver,
    crash_env,
    describe_state,
    pytestmark,
    seed,
    start,
    status_counts,
    wait_for,
)

BURST = 1_500


def test_two_schedulers_and_two_workers_deliver_a_burst_exactly_once(crash_env):  # noqa: F811
    app, tenant_id, env, procs = crash_env
    with Receiver(delay=0.001) as receiver:
        sop_id = seed(app, tenant_id, receiver.url, BURST, idempotent=False)
        procs += [
            start("scheduler", env),
            start("scheduler", env),
            start("worker", env),
            start("worker", env),
        ]
        wait_for(
            lambda: status_counts(app, sop_id).get("sent", 0) == BURST,
            300,
            "the whole burst sent",
            describe_state(app, sop_id, env["SOPFLOW_REDIS_URL"]),
        )
        assert status_counts(app, sop_id) == {"sent": BURST}
        assert len(receiver.calls) == BURST
        assert max(receiver.calls.values()) == 1, "a touch was delivered twice"
        assert all(p.poll() is None for p in procs), "a process died during the burst"
