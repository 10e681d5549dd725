"""Validate an SOP definition (the JSON a user sends) into a checked dict.

Every problem is reported at once with its path and the fix.  An action's
``type`` is a name registered through ``register_actions`` (the built-ins by
``sopflow.defaults.actions``); ``engine.sops.step_actions`` checks each one.  The stored
definition is the normalised result, so the engine never re-validates.

Shape::

    {"kind": "new_customer" | "nurture",
     "target": {"rule": <rule>|null, "sources": [..], "staff": [..]},
     "steps": [{"day": 2, "at": "09:00" | "delay": "30m",
                "actions": [{"type": "send", "channel": "log", "touchpoint": "private_chat",
                             "text": "Hi {{ customer.display_name }}", "attachments": []},
                            {"type": "crm.write_back", ...its params}, ...],
                "wait_for_reply": {"timeout": "24h", "on_reply": "continue"|"end",
                                   "on_timeout": "continue"|"skip"}}],
     "batch": {"size": 100, "interval": "10m"} | null,
     "quiet_hours": {"start": "22:00", "end": "08:00"} | null,
     "catch_up": "send_now" | "next_day" | "skip",
     "early_end": <rule> | null,
     "on_early_end": {"tags_add": [..], "flow_to": <sop id>|null},
     "on_complete": {"tags_add": [..], "flow_to": <sop id>|null},
     "reentry": false,
     "arms": [{"name": "a", "weight": 50, "steps": [...]}, ...] | absent,
     "goal": {"event_type": "order.paid"} | {"rule": <rule>} | null, "goal_window_days": 7}
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import TemplateSyntaxError
from sopflow_sdk import ATTACHMENT_KINDS, MAX_ATTACHMENTS, TOUCHPOINTS, ActionSpec, ChannelSpec, ConfigError

from sopflow.conditions import RuleError, parse, parse_duration
from sopflow.conditions.parse import MAX_ID, whole_number
from sopflow.engine.sops.step_actions import DefinitionChecks, check_action
from sopflow.engine.sops.templates import compiled, trial_problem

KINDS = ("new_customer", "nurture")
#: The kind of the hidden SOPs that carry a journey stage's reminders: never
#: listed, never entered by rule, created and versioned by the journey.
HIDDEN_KIND = "journey_stage"
#: The touchpoints of a ``send`` action (``remind_staff`` goes to ``staff_notice``).
SEND_TOUCHPOINTS = tuple(t for t in TOUCHPOINTS if t != "staff_notice")
WELCOME_RULE = (
    "a welcome message goes out only as the customer adds the staff member: use it in the first "
    'step of a new_customer SOP with "delay": "0m"'
)
CATCH_UP = ("send_now", "next_day", "skip")
MAX_STEPS = 100
MAX_ARMS = 10
ARM_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_DAY = 3650
MAX_TEXT = 4000
MAX_TAG = 100
#: the most customers a batch enrols per interval
MAX_BATCH = 100_000
WAIT_ON_REPLY = ("continue", "end")
WAIT_ON_TIMEOUT = ("continue", "skip")
HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


def validate_definition(
    raw: Any,
    *,
    fields: Mapping[str, Any],
    channel_exists: Callable[[str], bool],
    stage_exists: Callable[[int], bool],
    sop_is_nurture: Callable[[int], bool],
    actions: Mapping[str, ActionSpec],
    channel_spec: Callable[[str], ChannelSpec | None] | None = None,
) -> dict[str, Any]:
    """Return the normalised definition or raise ``ConfigError`` listing every problem.

    ``actions`` are the step types enabled for the tenant (name → ``ActionSpec``);
    ``channel_spec`` gives an enabled channel's ``ChannelSpec``, so a send step is
    checked against what the channel declares (touchpoints, attachments, parameters).

    Long because it checks every top-level key of a definition in one pass, so
    that all problems are reported together; each key is a few lines."""
    problems: list[tuple[str, str]] = []
    checks = DefinitionChecks(fields, channel_exists, stage_exists, actions)
    if channel_spec is not None:
        checks.channel_spec = channel_spec
    if not isinstance(raw, Mapping):
        raise ConfigError([("definition", "expected a JSON object")], subject="SOP definition")
    out: dict[str, Any] = {}

    kind = raw.get("kind")
    if kind not in KINDS:
        problems.append(("kind", f"use one of {', '.join(KINDS)}"))
    out["kind"] = kind

    def rule(value: Any, path: str) -> Any:
        if value is None:
            return None
        try:
            parse(value, fields)
        except RuleError as exc:
            problems.extend((f"{path}.{p}" if p else path, m) for p, m in exc.problems)
        return value

    target = _settings(raw.get("target"), "target", ("rule", "sources", "staff"), problems)
    out["target"] = {
        "rule": rule(target.get("rule"), "target.rule"),
        "sources": _strings(target.get("sources"), "target.sources", problems),
        "staff": _strings(target.get("staff"), "target.staff", problems),
    }
    if kind == "nurture" and out["target"]["rule"] is None and not out["target"]["sources"]:
        problems.append(("target.rule", "a nurture SOP needs an audience: give a rule or sources"))

    if raw.get("arms") is not None:
        out["arms"] = _arms(raw["arms"], problems, checks)
        out["steps"] = [step for arm in out["arms"] for step in arm["steps"]]
        if "steps" in raw and _derived_steps_differ(raw["steps"], out["steps"], checks):
            problems.append(("steps", "with arms, give each arm its steps: the top-level steps are derived"))
    else:
        steps = raw.get("steps")
        if not isinstance(steps, list) or not steps:
            problems.append(("steps", "give at least one step"))
            steps = []
        if len(steps) > MAX_STEPS:
            problems.append(("steps", f"at most {MAX_STEPS} steps"))
        out["steps"] = [_step(i, s, problems, checks) for i, s in enumerate(steps)]
    if kind != "new_customer" and any(
        a.get("touchpoint") == "welcome" for step in out["steps"] for a in step.get("actions", [])
    ):
        problems.append(("kind", WELCOME_RULE))

    batch = raw.get("batch")
    if batch is not None:
        batch = _settings(batch, "batch", ("size", "interval"), problems)
        size = whole_number(batch.get("size"))
        if size is None or not 1 <= size <= MAX_BATCH:
            problems.append(("batch.size", f"a whole number of customers per interval, 1 to {MAX_BATCH:,}"))
        interval = _duration(batch.get("interval"), "batch.interval", problems)
        out["batch"] = {"size": size, "interval": interval}
    else:
        out["batch"] = None

    quiet = raw.get("quiet_hours")
    if quiet is not None:
        quiet = _settings(quiet, "quiet_hours", ("start", "end"), problems)
        for key in ("start", "end"):
            if not isinstance(quiet.get(key), str) or not HHMM.fullmatch(quiet[key]):
                problems.append((f"quiet_hours.{key}", "a local time 'HH:MM' (24-hour)"))
        out["quiet_hours"] = {"start": quiet.get("start"), "end": quiet.get("end")}
    else:
        out["quiet_hours"] = None

    catch_up = raw.get("catch_up", "send_now")
    if catch_up not in CATCH_UP:
        problems.append(("catch_up", f"use one of {', '.join(CATCH_UP)}"))
    out["catch_up"] = catch_up

    out["early_end"] = rule(raw.get("early_end"), "early_end")
    for key in ("on_early_end", "on_complete"):
        end = _settings(raw.get(key), key, ("tags_add", "flow_to"), problems)
        flow_to = end.get("flow_to")
        target_id = whole_number(flow_to)
        if flow_to is not None and (
            target_id is None or not 1 <= target_id <= MAX_ID or not sop_is_nurture(target_id)
        ):
            problems.append(
                (
                    f"{key}.flow_to",
                    "the id of a nurture SOP of this tenant (only nurture SOPs can be flow targets)",
                )
            )
        out[key] = {
            "tags_add": _strings(end.get("tags_add"), f"{key}.tags_add", problems),
            "flow_to": flow_to,
        }

    reentry = raw.get("reentry", False)
    if not isinstance(reentry, bool):
        problems.append(("reentry", "true or false"))
    out["reentry"] = reentry

    goal = raw.get("goal")
    if goal is not None:
        if not isinstance(goal, Mapping) or not (("event_type" in goal) ^ ("rule" in goal)):
            problems.append(("goal", "give either {event_type: 'order.paid'} or {rule: ...}"))
            goal = None
        elif set(goal) - {"event_type", "rule"}:
            for extra in sorted(set(goal) - {"event_type", "rule"}):
                problems.append((f"goal.{extra}", "unknown goal setting; a goal has event_type or rule"))
        elif "rule" in goal:
            rule(goal["rule"], "goal.rule")
        elif not isinstance(goal["event_type"], str) or not goal["event_type"]:
            problems.append(("goal.event_type", "an event type such as 'order.paid'"))
    out["goal"] = dict(goal) if goal else None
    window = whole_number(raw.get("goal_window_days", 7))
    if window is None or not 1 <= window <= 365:
        problems.append(("goal_window_days", "a whole number of days from 1 to 365"))
    out["goal_window_days"] = raw.get("goal_window_days", 7) if window is None else window

    unknown = set(raw) - {
        "kind",
        "target",
        "steps",
        "batch",
        "quiet_hours",
        "catch_up",
        "early_end",
        "on_early_end",
        "on_complete",
        "reentry",
        "arms",
        "goal",
        "goal_window_days",
    }
    for key in sorted(unknown):
        problems.append((key, "unknown setting; see docs/sops.md for the definition's keys"))
    if problems:
        raise ConfigError(problems, subject="SOP definition")
    return out


def _arms(raw: Any, problems: list[tuple[str, str]], checks: DefinitionChecks) -> list[dict[str, Any]]:
    """A random split: 2 to 10 arms, each a unique name, a positive weight and its steps."""
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_ARMS:
        problems.append(("arms", f"a list of 2 to {MAX_ARMS} arms {{name, weight, steps}}"))
        return []
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for k, arm in enumerate(raw):
        p = f"arms[{k}]"
        if not isinstance(arm, Mapping):
            problems.append((p, "expected an arm object {name, weight, steps}"))
            continue
        name, weight, steps = arm.get("name"), arm.get("weight"), arm.get("steps")
        if not isinstance(name, str) or not ARM_NAME.fullmatch(name):
            problems.append((f"{p}.name", "a lower_snake_case name such as 'a' or 'short_copy'"))
        elif name in names:
            problems.append((f"{p}.name", f"{name!r} is used by another arm: give each arm its own name"))
        names.add(name if isinstance(name, str) else "")
        if not isinstance(weight, int | float) or isinstance(weight, bool) or not 0 < weight <= 1000:
            problems.append((f"{p}.weight", "a positive number up to 1000 (an arm's share is weight / sum)"))
        if not isinstance(steps, list) or not steps:
            problems.append((f"{p}.steps", "give the arm at least one step"))
            steps = []
        for key in sorted(set(arm) - {"name", "weight", "steps"}):
            problems.append((f"{p}.{key}", "unknown arm setting; an arm has name, weight and steps"))
        checked = [_step(i, s, problems, checks, prefix=f"{p}.") for i, s in enumerate(steps)]
        out.append({"name": name, "weight": weight, "steps": checked})
    if sum(len(a["steps"]) for a in out) > MAX_STEPS:
        problems.append(("arms", f"at most {MAX_STEPS} steps over all arms"))
    return out


def _derived_steps_differ(raw: Any, derived: list[dict[str, Any]], checks: DefinitionChecks) -> bool:
    """A definition read back (``GET``) carries the derived steps: accepted when they
    are the arms' steps, so a read definition can be saved again unchanged."""
    if not isinstance(raw, list):
        return True
    scratch: list[tuple[str, str]] = []
    return [_step(i, s, scratch, checks) for i, s in enumerate(raw)] != derived or bool(scratch)


def _settings(
    value: Any, path: str, keys: tuple[str, ...], problems: list[tuple[str, str]]
) -> Mapping[str, Any]:
    """An optional settings object (None: none given), every unknown key refused."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append((path, f"expected an object with {', '.join(keys)} (or null)"))
        return {}
    for key in sorted(set(value) - set(keys)):
        problems.append((f"{path}.{key}", f"unknown setting; {path} takes {', '.join(keys)}"))
    return value


def _strings(value: Any, path: str, problems: list[tuple[str, str]]) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or any(not isinstance(v, str) or not v for v in value):
        problems.append((path, "a list of non-empty strings"))
        return []
    return list(value)


def _immediate(delay: Any) -> bool:
    try:
        return parse_duration(delay).total_seconds() == 0
    except ValueError:
        return False


def _duration(value: Any, path: str, problems: list[tuple[str, str]]) -> str | None:
    try:
        parse_duration(value)
    except Exception:
        problems.append((path, f"{value!r} is not a duration like '30m', '12h', '2d'"))
        return None
    return value


def attachments(raw: Any, path: str, problems: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Up to nine attachments, each an image, link, mini-program, video or file."""
    items = [] if raw is None else raw
    if not isinstance(items, list) or len(items) > MAX_ATTACHMENTS:
        problems.append((path, f"at most {MAX_ATTACHMENTS} attachments"))
        items = []
    for k, att in enumerate(items):
        if not isinstance(att, Mapping) or att.get("kind") not in ATTACHMENT_KINDS:
            problems.append((f"{path}[{k}].kind", "image, link, miniprogram, video or file"))
    return [dict(a) for a in items if isinstance(a, Mapping)]


def template(text: Any, path: str, problems: list[tuple[str, str]]) -> str:
    """A message template checked for syntax (rendered later with the customer)."""
    if not isinstance(text, str) or len(text) > MAX_TEXT or "\x00" in text:
        problems.append((path, f"text of at most {MAX_TEXT} characters (no NUL characters)"))
        return ""
    try:
        compiled(text)
    except TemplateSyntaxError as exc:
        problems.append(
            (
                path,
                f"template error on line {exc.lineno}: {exc.message}; "
                "use {{ customer.display_name }} or {{ fields.<key> }}",
            )
        )
        return text
    too_much = trial_problem(text)
    if too_much:
        problems.append((path, f"{too_much}; keep a message's template to what one message needs"))
    return text


def _step(
    i: int, raw: Any, problems: list[tuple[str, str]], checks: DefinitionChecks, prefix: str = ""
) -> dict[str, Any]:
    """One step; ``i`` is its index in its list (an arm's steps: ``prefix`` ``arms[k].``)."""
    p = f"{prefix}steps[{i}]"
    if not isinstance(raw, Mapping):
        problems.append((p, "expected a step object"))
        return {}
    step: dict[str, Any] = {}
    if "delay" in raw:
        if "day" in raw or "at" in raw:
            problems.append((p, "give either day + at, or delay — not both"))
        step["delay"] = _duration(raw.get("delay"), f"{p}.delay", problems)
    else:
        day, at = whole_number(raw.get("day")), raw.get("at")
        if day is None or not 0 <= day <= MAX_DAY:
            problems.append((f"{p}.day", f"days after enrolment, 0 to {MAX_DAY} (0 = the enrolment day)"))
            day = raw.get("day")
        if not isinstance(at, str) or not HHMM.fullmatch(at):
            problems.append((f"{p}.at", "a local time 'HH:MM' (24-hour)"))
        step["day"], step["at"] = day, at
    actions = raw.get("actions")
    if not isinstance(actions, list) or not actions:
        problems.append((f"{p}.actions", "give at least one action"))
        actions = []
    step["actions"] = [check_action(f"{p}.actions[{j}]", a, problems, checks) for j, a in enumerate(actions)]
    wait = raw.get("wait_for_reply")
    if wait is not None:
        wait = _settings(wait, f"{p}.wait_for_reply", ("timeout", "on_reply", "on_timeout"), problems)
        step["wait_for_reply"] = {
            "timeout": _duration(wait.get("timeout"), f"{p}.wait_for_reply.timeout", problems),
            "on_reply": wait.get("on_reply", "continue"),
            "on_timeout": wait.get("on_timeout", "continue"),
        }
        if step["wait_for_reply"]["on_reply"] not in WAIT_ON_REPLY:
            problems.append((f"{p}.wait_for_reply.on_reply", "use continue or end"))
        if step["wait_for_reply"]["on_timeout"] not in WAIT_ON_TIMEOUT:
            problems.append((f"{p}.wait_for_reply.on_timeout", "use continue or skip"))
    for j, action in enumerate(step["actions"]):
        if action.get("touchpoint") == "welcome" and (i != 0 or not _immediate(step.get("delay"))):
            problems.append((f"{p}.actions[{j}].touchpoint", WELCOME_RULE))
    unknown = set(raw) - {"day", "at", "delay", "actions", "wait_for_reply"}
    for key in sorted(unknown):
        problems.append((f"{p}.{key}", "unknown step setting"))
    return step
