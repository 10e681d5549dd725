"""Meta-tests: the documentation keeps up with the code.

(a) every hookspec has a section in docs/plugin-hooks.md, with its arguments;
(b) every hookspec is named in a test; (c) every ``SOPFLOW_*`` variable in the
code is documented in docs/configuration.md and every documented one is still
used; (d) relative links in README.md, docs/ and examples/ resolve.  Each check
is a small function of text, and the ``*_can_fail`` tests prove it catches a
deliberate mistake.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).parent.parent
THIS = Path(__file__).name

#: Where ``SOPFLOW_*`` names are looked for (globs relative to the repository root).
CODE_DIRS = [
    "core/src",
    "sdk/src",
    "plugins/*/src",
    "scripts",
    "tests",
    "bench",
    ".ci",
    "core/tests",
    "sdk/tests",
    "plugins/*/tests",
    "examples",
]
CODE_SUFFIXES = {".py", ".sh", ".toml", ".cfg", ".ini", ".yml", ".yaml", ""}
TEST_DIRS = ["tests", "core/tests", "sdk/tests", "plugins/*/tests"]
ENV_VAR = re.compile(r"\bSOPFLOW_[A-Z0-9_]*[A-Z0-9]\b")


def hookspecs() -> dict[str, inspect.Signature]:
    import sopflow.hookspecs as specs

    return {
        name: inspect.signature(fn)
        for name, fn in vars(specs).items()
        if callable(fn) and hasattr(fn, "sopflow_spec")
    }


def dirs(patterns: Iterable[str]) -> list[Path]:
    return sorted({d for pattern in patterns for d in ROOT.glob(pattern) if d.is_dir()})


# -- (a) every hook is documented ---------------------------------------------------


def hook_sections(markdown: str) -> dict[str, str]:
    """``## `name` `` sections of a Markdown page: name → section text."""
    parts = re.split(r"^## `(\w+)`[ \t]*$", markdown, flags=re.M)
    return {parts[i]: parts[i + 1].split("\n## ", 1)[0] for i in range(1, len(parts), 2)}


def documented_arguments(section: str, name: str) -> list[str] | None:
    """The parameter names of the first ``def name(...)`` in the section's
    Python blocks, or ``None`` if there is none."""
    for block in re.findall(r"```python\n(.*?)```", section, re.S):
        try:
            tree = ast.parse(block)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return [a.arg for a in node.args.args + node.args.kwonlyargs]
    return None


def hook_doc_problems(markdown: str, specs: dict[str, inspect.Signature]) -> list[str]:
    sections = hook_sections(markdown)
    problems = [f"no '## `{n}`' section" for n in specs if n not in sections]
    problems += [f"section '{n}' names no hookspec" for n in sections if n not in specs]
    for name, section in sections.items():
        if name not in specs:
            continue
        expected = list(specs[name].parameters)
        got = documented_arguments(section, name)
        if got != expected:
            problems.append(f"section '{name}': signature {got}, hookspec has {expected}")
    return problems


def test_hookspecs_are_found():
    assert {"register_fields", "register_channels", "on_event"} <= set(hookspecs())


def test_every_hook_is_documented_with_its_arguments():
    text = (ROOT / "docs" / "plugin-hooks.md").read_text(encoding="utf-8")
    assert hook_doc_problems(text, hookspecs()) == [], "fix docs/plugin-hooks.md"


def test_hook_doc_check_can_fail():
    specs = {"register_x": inspect.signature(lambda register: None)}
    good = "## `register_x`\n\n```python\ndef register_x(register): ...\n```\n"
    assert hook_doc_problems(good, specs) == []
    assert hook_doc_problems("# nothing\n", specs) == ["no '## `register_x`' section"]
    wrong_args = good.replace("(register)", "(reg)")
    assert hook_doc_problems(wrong_args, specs) == [
        "section 'register_x': signature ['reg'], hookspec has ['register']"
    ]
    assert hook_doc_problems(good + "## `gone`\n", specs) == ["section 'gone' names no hookspec"]


# -- (b) every hook has a test ---------------------------------------------------------


def untested(names: Iterable[str], test_sources: Iterable[str]) -> list[str]:
    corpus = "\n".join(test_sources)
    return [n for n in names if not re.search(rf"\b{re.escape(n)}\b", corpus)]


def test_every_hook_has_a_test():
    sources = [
        p.read_text(encoding="utf-8") for d in dirs(TEST_DIRS) for p in d.rglob("test_*.py") if p.name != THIS
    ]
    assert sources, "no test files found"
    assert untested(hookspecs(), sources) == [], "write a test that exercises these hooks"


def test_hook_test_check_can_fail():
    assert untested(["on_event", "register_jobs"], ["def on_event(tenant_id, event): ..."]) == [
        "register_jobs"
    ]
    assert untested(["on_event"], ["def on_events(): ..."]) == ["on_event"]


# -- (c) every setting is documented --------------------------------------------------


def env_vars(text: str) -> set[str]:
    return set(ENV_VAR.findall(text))


def env_vars_in_code() -> dict[str, str]:
    """Variable → the first file that names it."""
    found: dict[str, str] = {}
    for d in dirs(CODE_DIRS):
        for p in sorted(d.rglob("*")):
            if not p.is_file() or p.suffix not in CODE_SUFFIXES or "__pycache__" in p.parts or p.name == THIS:
                continue
            for name in env_vars(p.read_text(encoding="utf-8", errors="ignore")):
                found.setdefault(name, str(p.relative_to(ROOT)))
    return found


def documented_env_vars(markdown: str) -> set[str]:
    """The variables that have a table row (first cell) in the page."""
    return set(re.findall(r"^\| `(SOPFLOW_[A-Z0-9_]+)` \|", markdown, re.M))


def test_every_setting_is_documented_and_every_documented_setting_exists():
    documented = documented_env_vars((ROOT / "docs" / "configuration.md").read_text(encoding="utf-8"))
    in_code = env_vars_in_code()
    assert {"SOPFLOW_DATABASE_URL", "SOPFLOW_PLUGINS"} <= set(in_code)
    missing = {name: where for name, where in in_code.items() if name not in documented}
    assert missing == {}, "add a row to docs/configuration.md for each (name: where it is used)"
    stale = sorted(documented - set(in_code))
    assert stale == [], "documented in docs/configuration.md but used nowhere: remove the rows"


def test_setting_check_can_fail():
    code = 'os.environ.get("SOPFLOW_FOO_BAR")  # and SOPFLOW_BAZ, not SOPFLOW_'
    assert env_vars(code) == {"SOPFLOW_FOO_BAR", "SOPFLOW_BAZ"}
    page = "| `SOPFLOW_FOO_BAR` | int | `1` | `2` | x |\n\nprose `SOPFLOW_BAZ`\n"
    assert documented_env_vars(page) == {"SOPFLOW_FOO_BAR"}


# -- (d) relative links resolve ------------------------------------------------------------

LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def broken_links(page: Path, markdown: str) -> list[str]:
    """Relative link targets in ``markdown`` (outside code) that are not files."""
    prose = re.sub(r"^(```|~~~).*?^\1", "", markdown, flags=re.S | re.M)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    broken = []
    for target in LINK.findall(prose):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue  # URLs, mailto:, anchors within the page
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    return broken


def markdown_pages() -> list[Path]:
    return [
        ROOT / "README.md",
        *sorted((ROOT / "docs").rglob("*.md")),
        *sorted((ROOT / "examples").rglob("*.md")),
    ]


def test_relative_links_resolve():
    broken = {
        str(page.relative_to(ROOT)): links
        for page in markdown_pages()
        if (links := broken_links(page, page.read_text(encoding="utf-8")))
    }
    assert broken == {}, "these links point to files that do not exist"


def test_link_check_can_fail(tmp_path):
    (tmp_path / "there.md").write_text("x")
    page = tmp_path / "README.md"
    text = (
        "[ok](there.md) [anchor](there.md#a) [web](https://example.com) [self](#top) "
        "[gone](docs/missing.md) ![img](img/missing.png)\n\n"
        "```\n[in code](nope.md)\n```\n`[inline](nope2.md)`\n"
    )
    assert broken_links(page, text) == ["docs/missing.md", "img/missing.png"]
