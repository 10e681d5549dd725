"""``sopflow wecom import`` — the plugin's command (hook ``register_commands``) run
as a real subprocess against the fake WeCom over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any


def test_wecom_import_command_shows_progress_and_is_rerunnable(wecom_app: Any, sopflow_app: Any) -> None:
    from sopflow_sdk.testing.harness import TEST_SECRET_KEY

    fake = wecom_app.fake
    for n, staff in enumerate(("anna", "bob")):
        fake.add_staff(staff)
        for i in range(60 * n, 60 * n + 80):  # wm0060–wm0079 belong to both
            fake.seed_contact(staff, f"wm{i:04d}", f"客户{i:04d}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOPFLOW_")}
    env.update(
        SOPFLOW_DATABASE_URL=sopflow_app.settings.database_url,
        SOPFLOW_SECRET_KEY=TEST_SECRET_KEY,
        SOPFLOW_LOG_LEVEL="WARNING",
    )
    cmd = [sys.executable, "-m", "sopflow.cli", "wecom", "import", str(wecom_app.account_id)]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "importing follow users' customers" in first.stdout + first.stderr
    assert "created 140 customers" in first.stdout, first.stdout
    listed = wecom_app.api.get("/api/v1/customers", params={"limit": 500}).json()["items"]
    assert len(listed) == 140 and {c["display_name"] for c in listed} >= {"客户0000", "客户0139"}
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "created 0 customers" in again.stdout, again.stdout + again.stderr
    wrong = subprocess.run([*cmd[:-1], "999"], env=env, capture_output=True, text=True, timeout=120)
    assert wrong.returncode != 0 and "no WeCom channel account 999" in wrong.stderr
    assert "Traceback" not in wrong.stderr
