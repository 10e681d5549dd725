"""Built-in event types: the vocabulary every channel maps its callbacks onto."""

from sopflow_sdk import TriggerSpec, hookimpl

BUILTIN_EVENTS = {
    "customer.added": "a customer added a staff member (or was imported)",
    "customer.updated": "customer data changed through the API",
    "customer.churned": "the customer deleted the staff member or left",
    "customer.merged": "two customer records were merged into one",
    "message.received": "the customer sent a message; payload.text holds it",
    "order.paid": "an order was paid; payload.amount, payload.order_id",
    "stage.changed": "the customer moved to another stage",
    "touch.sent": "an SOP touch was delivered",
}


@hookimpl(trylast=True)
def register_triggers(register):  # type: ignore[no-untyped-def]
    for event_type, description in BUILTIN_EVENTS.items():
        register(TriggerSpec(event_type, description=description))
