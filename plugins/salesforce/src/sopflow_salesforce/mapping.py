"""A connection's field mapping: which Salesforce object, which field goes where,
in which direction and who owns it, and how a record finds its customer.

``{"object": "Contact",
   "fields": [{"salesforce": "Policy_Expiry__c", "sopflow": "policy_expiry", "direction": "from_crm"},
              {"salesforce": "Engagement__c", "sopflow": "engagement", "direction": "to_crm"},
              {"salesforce": "Tier__c", "sopflow": "tier", "direction": "both", "owner": "salesforce"}],
   "match": [{"salesforce": "Email", "sopflow": "email"}],
   "external_id_field": "Sopflow_Id__c",
   "stage_field": "Status", "stages": {"qualified": "Qualified"}}``

``check`` judges a mapping against the object's ``describe`` and the tenant's
field definitions and returns every problem (path, message); ``sopflow_fields``
is what the mapping contributes to the tenant's fields, typed from ``describe``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs
from sopflow_sdk import FieldSpec

DIRECTIONS = ("from_crm", "to_crm", "both")
OWNERS = ("salesforce", "sopflow")
#: describe's field types and the sopflow field type each maps onto.
FIELD_TYPES_FROM_DESCRIBE = {
    "string": "text",
    "textarea": "text",
    "email": "text",
    "phone": "text",
    "url": "text",
    "picklist": "choice",
    "multipicklist": "multi_choice",
    "date": "date",
    "datetime": "datetime",
    "double": "number",
    "currency": "number",
    "percent": "number",
    "int": "number",
    "long": "number",
    "boolean": "bool",
}
_KEY = re.compile(r"[a-z][a-z0-9_]{0,62}")
_OBJECT = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,79}")


@attrs.frozen
class FieldMap:
    salesforce: str
    sopflow: str
    direction: str
    owner: str  # who wins a conflict: from_crm → salesforce, to_crm → sopflow
    type: str  # the sopflow type
    choices: tuple[str, ...] = ()

    @property
    def inbound(self) -> bool:
        return self.direction in ("from_crm", "both")

    @property
    def outbound(self) -> bool:
        return self.direction in ("to_crm", "both")


@attrs.frozen
class ObjectMapping:
    object: str
    fields: tuple[FieldMap, ...]
    match: tuple[tuple[str, str], ...] = ()  # (salesforce field, sopflow field)
    external_id_field: str | None = None
    stage_field: str | None = None
    stages: Mapping[str, str] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "object": self.object,
            "fields": [attrs.asdict(f) | {"choices": list(f.choices)} for f in self.fields],
            "match": [{"salesforce": s, "sopflow": k} for s, k in self.match],
            "external_id_field": self.external_id_field,
            "stage_field": self.stage_field,
            "stages": dict(self.stages),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> ObjectMapping:
        return cls(
            raw["object"],
            tuple(FieldMap(**{**f, "choices": tuple(f.get("choices", ()))}) for f in raw["fields"]),
            tuple((m["salesforce"], m["sopflow"]) for m in raw.get("match", ())),
            raw.get("external_id_field"),
            raw.get("stage_field"),
            dict(raw.get("stages") or {}),
        )

    @property
    def select_fields(self) -> list[str]:
        """Every Salesforce field a sync reads."""
        names = ["Id", "SystemModstamp"]
        names += [f.salesforce for f in self.fields] + [s for s, _ in self.match]
        if self.external_id_field:
            names.append(self.external_id_field)
        return list(dict.fromkeys(names))

    def sopflow_fields(self) -> list[FieldSpec]:
        return [
            FieldSpec(
                f.sopflow, f.type, label=f"{f.salesforce} (Salesforce {self.object})", choices=f.choices
            )
            for f in self.fields
        ]


def object_problems(body: Any) -> list[tuple[str, str]]:
    """The shape problems that need no ``describe``: fix these before the object is read."""
    if not isinstance(body, Mapping):
        return [("body", "send a JSON object with object, fields and (optionally) match")]
    name = body.get("object")
    if not isinstance(name, str) or not _OBJECT.fullmatch(name):
        return [("object", "name the Salesforce object: Contact, Lead or a custom Policy__c")]
    if not isinstance(body.get("fields"), list) or not body["fields"]:
        return [("fields", "map at least one field: [{salesforce, sopflow, direction}]")]
    return []


def _field_problems(
    i: int, raw: Any, described: Mapping[str, Mapping[str, Any]], defined: Mapping[str, FieldSpec]
) -> tuple[FieldMap | None, list[tuple[str, str]]]:
    p = f"fields[{i}]"
    if not isinstance(raw, Mapping):
        return None, [(p, "a mapping {salesforce, sopflow, direction[, owner]}")]
    sf_name, key, direction = raw.get("salesforce"), raw.get("sopflow"), raw.get("direction", "from_crm")
    problems: list[tuple[str, str]] = []
    meta = described.get(sf_name) if isinstance(sf_name, str) else None
    if meta is None:
        close = ", ".join(sorted(n for n in described if n.lower().startswith(str(sf_name)[:3].lower()))[:5])
        problems.append(
            (
                f"{p}.salesforce",
                f"no field {sf_name!r} on this object" + (f"; near: {close}" if close else ""),
            )
        )
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        problems.append((f"{p}.sopflow", "a lower_snake_case field key of at most 63 characters"))
    if direction not in DIRECTIONS:
        problems.append((f"{p}.direction", f"one of {', '.join(DIRECTIONS)}"))
    owner = {"from_crm": "salesforce", "to_crm": "sopflow"}.get(direction, raw.get("owner"))
    if direction == "both" and owner not in OWNERS:
        problems.append((f"{p}.owner", "a field synced both ways needs an owner: salesforce or sopflow"))
    if meta is None or problems:
        return None, problems
    sf_type = meta.get("type")
    kind = FIELD_TYPES_FROM_DESCRIBE.get(sf_type)
    if kind is None:
        return None, [(f"{p}.salesforce", f"{sf_name} is a {sf_type} field, which sopflow cannot hold")]
    if direction != "from_crm" and not meta.get("updateable", False):
        problems.append((f"{p}.direction", f"{sf_name} is read-only in Salesforce; use from_crm"))
    choices = tuple(v["value"] for v in meta.get("picklistValues") or () if v.get("active", True))
    existing = defined.get(key)
    if existing is not None:
        if existing.type != kind:
            problems.append(
                (f"{p}.sopflow", f"{key} is a {existing.type} field; {sf_name} ({sf_type}) needs {kind}")
            )
        elif kind in ("choice", "multi_choice") and not set(choices) <= set(existing.choices):
            missing = ", ".join(sorted(set(choices) - set(existing.choices)))
            problems.append((f"{p}.sopflow", f"{key} lacks the picklist values {missing}"))
    return FieldMap(sf_name, key, direction, owner, kind, choices), problems


def check(
    body: Mapping[str, Any], describe: Mapping[str, Any], defined: Mapping[str, FieldSpec]
) -> tuple[ObjectMapping | None, list[tuple[str, str]]]:
    """The mapping, or every problem with it (and ``None``)."""
    described = {f["name"]: f for f in describe.get("fields", ())}
    problems: list[tuple[str, str]] = []
    fields: list[FieldMap] = []
    for i, raw in enumerate(body["fields"]):
        fm, found = _field_problems(i, raw, described, defined)
        problems += found
        if fm is not None:
            fields.append(fm)
    by_key: dict[str, int] = {}
    for i, raw in enumerate(body["fields"]):
        key = raw.get("sopflow") if isinstance(raw, Mapping) else None
        if isinstance(key, str) and key in by_key:
            problems.append((f"fields[{i}].sopflow", f"{key} is already mapped by fields[{by_key[key]}]"))
        elif isinstance(key, str):
            by_key[key] = i
    match = []
    for i, raw in enumerate(body.get("match") or ()):
        sf_name = raw.get("salesforce") if isinstance(raw, Mapping) else None
        key = raw.get("sopflow") if isinstance(raw, Mapping) else None
        if sf_name not in described:
            problems.append((f"match[{i}].salesforce", f"no field {sf_name!r} on this object"))
        if not isinstance(key, str) or (key not in defined and key not in by_key):
            problems.append((f"match[{i}].sopflow", f"{key!r} is not a field of this tenant (nor mapped)"))
        match.append((sf_name, key))
    ext = body.get("external_id_field")
    if ext is not None and not (described.get(ext) or {}).get("externalId"):
        problems.append(("external_id_field", f"{ext!r} is not an external-id field of {body['object']}"))
    stage_field = body.get("stage_field")
    if stage_field is not None and not (described.get(stage_field) or {}).get("updateable"):
        problems.append(("stage_field", f"{stage_field!r} is not an updateable field of {body['object']}"))
    if problems:
        return None, problems
    stages = {str(k): str(v) for k, v in (body.get("stages") or {}).items()}
    return ObjectMapping(body["object"], tuple(fields), tuple(match), ext, stage_field, stages), []
