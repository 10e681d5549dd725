"""A hosted form's answers, checked like the customers API checks a field write:
each answer converted to the field's type, choices from the field's definition,
required questions answered; every problem named on its question."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

PHONE = re.compile(r"\+?\d{6,15}")
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}")
MAX_TEXT = 1000


def _one(field: Any, raw: list[str]) -> tuple[Any, str | None]:
    """The stored value of one question's inputs, or the error."""
    value = raw[0].strip() if raw else ""
    if field.type == "multi_choice":
        picked = [v for v in raw if v]
        wrong = [v for v in picked if v not in field.choices]
        return (picked, None) if not wrong else (None, f"choose from: {', '.join(field.choices)}")
    if field.type == "choice":
        return (
            (value, None) if value in field.choices else (None, f"choose one of: {', '.join(field.choices)}")
        )
    if field.type == "bool":
        return (
            ({"yes": True, "no": False}[value], None)
            if value in ("yes", "no")
            else (None, "choose yes or no")
        )
    if field.type == "number":
        try:
            number = Decimal(value)
        except InvalidOperation:
            return None, "give a number, e.g. 42"
        if not number.is_finite():
            return None, "give a number, e.g. 42"
        return (int(number) if number == number.to_integral_value() else float(number)), None
    if field.type == "date":
        try:
            return date.fromisoformat(value).isoformat(), None
        except ValueError:
            return None, "give a date as YYYY-MM-DD"
    if len(value) > MAX_TEXT:
        return None, f"at most {MAX_TEXT} characters"
    return value, None


def check_answers(
    form: dict[str, Any], fields: dict[str, Any], posted: dict[str, list[str]]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The field values to write and the errors by question field (nothing is
    written when there is any error)."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for q in form["questions"]:
        field = fields.get(q["field"])
        if field is None:
            continue
        raw = [v for v in posted.get(q["field"], []) if v.strip()]
        if not raw:
            if q["required"]:
                errors[q["field"]] = "请回答此题 / Please answer this question"
            continue
        value, error = _one(field, raw)
        if error:
            errors[q["field"]] = error
        else:
            values[q["field"]] = value
    return values, errors


def contact(raw: str) -> tuple[tuple[str, str] | None, str | None]:
    """An anonymous respondent's phone or e-mail as an identity, or the error."""
    text = raw.strip()
    if "@" in text:
        return (
            (("email", text.lower()), None)
            if EMAIL.fullmatch(text)
            else (None, "give a valid e-mail address")
        )
    digits = re.sub(r"[\s-]", "", text)
    return (
        (("phone", digits), None)
        if PHONE.fullmatch(digits)
        else (None, "give a phone number or e-mail address")
    )
