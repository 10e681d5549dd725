"""Every SOP example in docs/sops.md is a valid ``POST /api/v1/sops`` body.

Convention (stated in docs/sops.md): a ```json block right after an
``<!-- sop-example -->`` line is a complete request body (``name`` and
``definition``); the block after ``<!-- sop-setup -->`` lists the fields,
pipelines and segments the examples assume.  The examples are posted in page
order to one fresh tenant (later ones may flow into earlier ones by id), with
the first-party ``wecom`` plugin loaded, and each must be accepted with 201.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "sops.md"
MARKED = re.compile(r"^<!-- (sop-example|sop-setup) -->\n```json\n(.*?)^```", re.M | re.S)


def blocks(kind: str) -> list[str]:
    return [body for tag, body in MARKED.findall(DOC.read_text(encoding="utf-8")) if tag == kind]


@pytest.fixture
def wecom_api(sopflow_database: Any, request: pytest.FixtureRequest, manual_clock: Any) -> Iterator[Any]:
    from litestar.testing import TestClient
    from sopflow.api.app import build_api
    from sopflow_sdk.testing.harness import ApiClient, make_test_app, new_tenant

    app = make_test_app(
        sopflow_database.url_for_test(request.node.name),
        clock=manual_clock,
        env={"SOPFLOW_PLUGINS": "wecom"},
    )
    tenant_id, key = new_tenant(app, "docs")
    try:
        with TestClient(build_api(app), raise_server_exceptions=False) as client:
            yield ApiClient(client, key, tenant_id)
    finally:
        app.dispose()


def set_up(api: Any) -> None:
    [setup] = blocks("sop-setup")
    spec = json.loads(setup)
    for field in spec.get("fields", []):
        r = api.post("/api/v1/fields", json=field)
        assert r.status_code == 201, r.text
    for pipeline in spec.get("pipelines", []):
        r = api.post("/api/v1/pipelines", json=pipeline)
        assert r.status_code == 201, r.text
    for segment in spec.get("segments", []):
        r = api.post("/api/v1/segments", json=segment)
        assert r.status_code == 201, r.text


def test_the_doc_has_the_seed_examples() -> None:
    examples = [json.loads(b) for b in blocks("sop-example")]
    assert len(examples) >= 5, "the sop-example convention found too few examples; was a marker lost?"
    by_name = {e["name"]: e["definition"] for e in examples}
    sunscreen = next(d for d in by_name.values() if [s.get("day") for s in d["steps"]] == [5, 10, 15, 30, 40])
    assert {s["at"] for s in sunscreen["steps"]} == {"10:00"}
    incubation = next(d for d in by_name.values() if d["kind"] == "new_customer")
    times = [(s["day"], s["at"]) for s in incubation["steps"]]
    assert len(times) == 6 and max(d for d, _ in times) - min(d for d, _ in times) >= 2
    touchpoints = {
        (s["day"], s["at"]): s["actions"][0].get("touchpoint", "private_chat") for s in incubation["steps"]
    }
    assert touchpoints[(2, "09:00")] == "moments" and touchpoints[(2, "20:00")] == "private_chat"


def test_every_json_block_is_valid_json() -> None:
    for block in re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S):
        try:
            json.loads(block)
        except json.JSONDecodeError as exc:
            pytest.fail(f"invalid JSON in docs/sops.md ({exc}):\n{block}")


def test_every_sop_example_is_accepted(wecom_api: Any) -> None:
    set_up(wecom_api)
    created = []
    for body in blocks("sop-example"):
        example = json.loads(body)
        r = wecom_api.post("/api/v1/sops", json=example)
        assert r.status_code == 201, f"{example['name']}: {r.status_code} {r.text}"
        created.append(r.json())
        # the stored definition is the normalised form of the example
        stored = r.json()["definition"]
        assert stored["kind"] == example["definition"]["kind"]
        assert len(stored["steps"]) == len(example["definition"]["steps"])
    # and each can be started (nurture audiences computed over an empty tenant)
    for sop in created:
        r = wecom_api.post(f"/api/v1/sops/{sop['id']}/start")
        assert r.status_code == 200, f"{sop['name']}: {r.text}"


def test_the_validation_error_example_is_real(wecom_api: Any) -> None:
    """The 422 shown under 'Validation errors' is what the API returns."""
    text = DOC.read_text(encoding="utf-8").split("## Validation errors", 1)[1]
    shown = json.loads(re.search(r"```json\n(.*?)```", text, re.S).group(1))
    r = wecom_api.post(
        "/api/v1/sops",
        json={
            "name": "bad",
            "definition": {"kind": "nurture", "steps": [{"day": 1, "at": "25:00", "actions": []}]},
        },
    )
    assert r.status_code == 422
    assert r.json() == shown


def test_sunscreen_example_runs_day_5_10_15_30_40_in_two_zones(wecom_api: Any, manual_clock: Any) -> None:
    """The first example, switched to the log channel, sends on the dates the doc gives."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from tests.sop_support import add_customer, create_sop, run_days, tag, touches

    set_up(wecom_api)
    manual_clock.set(datetime(2026, 3, 2, 10, 30, tzinfo=ZoneInfo("Asia/Shanghai")))
    example = json.loads(blocks("sop-example")[0])
    definition = json.loads(json.dumps(example["definition"]).replace('"wecom"', '"log"'))
    sop_id = create_sop(wecom_api, example["name"], definition)
    shanghai = add_customer(wecom_api, "wm-sh", tags=["防晒霜"])
    new_york = add_customer(wecom_api, "wm-ny", timezone="America/New_York")
    tag(wecom_api, new_york, "防晒霜")
    app = wecom_api.client.app.state.sopflow
    run_days(app, manual_clock, 45)
    expected = {
        shanghai: ("Asia/Shanghai", ["03-07", "03-12", "03-17", "04-01", "04-11"]),
        new_york: ("America/New_York", ["03-06", "03-11", "03-16", "03-31", "04-10"]),
    }
    for customer_id, (zone, days) in expected.items():
        rows = touches(app, customer_id=customer_id, sop_id=sop_id)
        assert [t.status for t in rows] == ["sent"] * 5, [t.status for t in rows]
        local = [t.sent_at.astimezone(ZoneInfo(zone)).strftime("%m-%d %H:%M") for t in rows]
        assert local == [f"{d} 10:00" for d in days], (zone, local)


TRY_IT = re.compile(r"^<!-- try-it -->\n```sh\n(.*?)^```", re.M | re.S)


def test_the_try_it_block_runs_as_written_against_sopflow_up(tmp_path: Path) -> None:
    """The page's first commands, run by bash and curl against a real `sopflow up`."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import httpx

    from tests.test_cli import KEY_LINE, clean_env, free_port, read

    [script] = TRY_IT.findall(DOC.read_text(encoding="utf-8"))
    port = free_port()
    out, err = tmp_path / "up.out", tmp_path / "up.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sopflow.cli", "up", "--host", "127.0.0.1", "--port", str(port)],
            env=clean_env(tmp_path, SOPFLOW_PLUGINS=""),
            stdout=stdout,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 60
        while not KEY_LINE.search(read(out)) or not _answers(httpx, port):
            assert proc.poll() is None and time.monotonic() < deadline, read(err)
            time.sleep(0.2)
        key = KEY_LINE.search(read(out)).group(1)
        # the reader's two substitutions: their key, and (here) a free port
        script = script.replace("KEY=sfk_...", f"KEY={key}").replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, run.stdout + run.stderr
        *answers, enrollments = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
        assert answers[3]["status"] == "started", answers[3]
        assert answers[4]["results"][0]["status"] == "created", answers[4]
        [enrolled] = enrollments["items"]
        assert enrolled["status"] == "active" and enrolled["next_touch_at"] is not None, enrolled
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def _answers(httpx: Any, port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False
