"""Meta-tests: the docs keep up with the code."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
SOURCES = ["core/src", "sdk/src", "plugins/wecom/src", "scripts", "tests", "bench", ".ci"]


def hook_names() -> list[str]:
    import sopflow.hookspecs as specs

    return [n for n, f in vars(specs).items() if callable(f) and hasattr(f, "sopflow_spec")]


def test_every_hook_is_documented():
    text = (ROOT / "docs" / "plugin-hooks.md").read_text(encoding="utf-8")
    missing = [n for n in hook_names() if f"## `{n}`" not in text]
    assert missing == [], f"add a section to docs/plugin-hooks.md for {missing}"


def test_every_hook_has_a_test():
    tests = [
        p
        for d in ("tests", "core/tests", "sdk/tests", "plugins/wecom/tests")
        for p in (ROOT / d).rglob("test_*.py")
        if p.name != "test_docs_meta.py"
    ]
    corpus = "\n".join(p.read_text(encoding="utf-8") for p in tests)
    untested = [n for n in hook_names() if n not in corpus]
    assert untested == [], f"write a test that exercises {untested}"


def env_vars_in_code() -> set[str]:
    found: set[str] = set()
    for d in SOURCES:
        for p in (ROOT / d).rglob("*"):
            if p.is_file() and p.suffix in (".py", ".sh", "") and "__pycache__" not in p.parts:
                found |= set(
                    re.findall(r"SOPFLOW_[A-Z_]*[A-Z]", p.read_text(encoding="utf-8", errors="ignore"))
                )
    return found


def test_every_setting_is_documented_and_every_documented_setting_exists():
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(SOPFLOW_[A-Z_]+)`", text, re.M))
    in_code = env_vars_in_code()
    assert sorted(in_code - documented) == [], "document these in docs/configuration.md"
    assert sorted(documented - in_code) == [], "these are documented but no longer used"


def test_relative_links_resolve():
    broken = []
    for md in [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", md.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (md.parent / target).exists():
                broken.append(f"{md.relative_to(ROOT)} → {target}")
    assert broken == []
