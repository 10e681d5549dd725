"""Built-in event types: the vocabulary every channel maps its callbacks onto."""

from sopflow_sdk import STANDARD_EVENTS, TriggerSpec, hookimpl


@hookimpl(trylast=True)
def register_triggers(register):  # type: ignore[no-untyped-def]
    for event_type, description in STANDARD_EVENTS.items():
        register(TriggerSpec(event_type, description=description))
