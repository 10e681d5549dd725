"""Message templates, bounded: one tenant's template can never hold a worker.

Steps' texts are Jinja templates rendered in a sandbox (no attribute tricks, no
I/O).  The sandbox alone still lets a short template do unbounded work —
``range`` inside ``range``, ``"x" * 10**9``, ``"x"|center(10**9)``, a hundred
chained ``replace`` filters — so every render runs with a budget:

- loops: at most ``MAX_LOOP_ITEMS`` ``range`` items per render, counted when
  each ``range`` is made (nested loops multiply, and are refused before they run);
- numbers given to any call, filter or repetition: at most ``MAX_ARGUMENT``;
- every string or list a call, filter or operator makes, and the output: at most
  ``MAX_OUTPUT`` characters (items).

The checks are counts, not clocks, so a template is refused the same way at
save (a trial render) and at send."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import SandboxedEnvironment

MAX_LOOP_ITEMS = 10_000
MAX_ARGUMENT = 10_000
#: The longest rendered text: channels take less (WeCom 4,000 bytes); this bound is
#: about the worker's memory, the channel's own check gives the user's error.
MAX_OUTPUT = 20_000

_budget: ContextVar[list[int]] = ContextVar("template_budget")


class TemplateLimit(TemplateError):
    """A template did (or would do) more work than a message needs."""


def _check_args(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ARGUMENT:
            raise TemplateLimit(f"a number larger than {MAX_ARGUMENT} in the template; a message needs none")


def _check_size(value: Any) -> Any:
    if isinstance(value, str | list | tuple) and len(value) > MAX_OUTPUT:
        raise TemplateLimit(f"the template makes more than {MAX_OUTPUT} characters")
    return value


def _bounded_range(*args: int) -> range:
    _check_args(args, {})
    items = range(*args)
    left = _budget.get([MAX_LOOP_ITEMS])
    if len(items) > left[0]:
        raise TemplateLimit(f"the template loops more than {MAX_LOOP_ITEMS} times")
    left[0] -= len(items)
    return items


def _bounded_filter(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)  # keeps jinja's pass_context markers
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _check_args(args[1:], kwargs)  # the first argument is the value filtered
        return _check_size(fn(*args, **kwargs))

    return bounded


class BoundedEnvironment(SandboxedEnvironment):
    """A sandbox whose calls, filters and repetitions stay within the budget."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self) -> None:
        super().__init__(autoescape=False)
        self.globals["range"] = _bounded_range
        self.filters = {name: _bounded_filter(fn) for name, fn in self.filters.items()}

    def call_binop(self, context: Any, op: str, left: Any, right: Any) -> Any:
        """``*`` and ``**``, with their operands and result within the budget."""
        _check_args((left, right), {})
        fn = operator.mul if op == "*" else operator.pow
        return _check_size(fn(left, right))

    def call(self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Any call (a method, ``range``), with its arguments and result within the budget."""
        _check_args(args, kwargs)
        return _check_size(super().call(__context, __obj, *args, **kwargs))


templates = BoundedEnvironment()


@functools.lru_cache(maxsize=1024)
def compiled(text: str) -> Any:
    """The compiled template (compiling costs more than rendering)."""
    return templates.from_string(text)


def render_bounded(text: str, **context: Any) -> str:
    """``text`` rendered with ``context`` within the budget; raises ``TemplateLimit``."""
    token = _budget.set([MAX_LOOP_ITEMS])
    try:
        out: list[str] = []
        size = 0
        for chunk in compiled(text).generate(**context):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise TemplateLimit(f"the template makes more than {MAX_OUTPUT} characters")
            out.append(chunk)
        return "".join(out)
    finally:
        _budget.reset(token)


def trial_problem(text: str) -> str | None:
    """Why ``text`` would exceed the budget for a customer with no data (checked
    at save), or None.  Other render errors depend on the customer's data and are
    reported on the touch that meets them."""
    try:
        render_bounded(text, customer={"display_name": "", "source": None}, fields={}, staff={"name": ""})
    except TemplateLimit as exc:
        return str(exc)
    except Exception:  # data-dependent (a filter on a missing field): the touch reports it
        return None
    return None
