"""Form posts in the console: the place to go back to.  A form's text as the
customer's values is ``engine.customers.form_values`` (the sidebar uses it too)."""

from __future__ import annotations

from collections.abc import Mapping


def back_to(form: Mapping[str, str], default: str) -> str:
    """A ``next`` inside the console, else ``default`` (never another site)."""
    target = form.get("next", "")
    return target if target.startswith("/console/") and not target.startswith("//") else default
