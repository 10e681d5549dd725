"""The standard event vocabulary.  Core registers these types; a channel plugin
maps its callbacks onto them (and registers only the types it adds)."""

STANDARD_EVENTS: dict[str, str] = {
    "customer.added": "a customer added a staff member (new-customer SOPs and welcome messages start)",
    "customer.imported": "an existing contact was imported (no welcome message, no new-customer SOP)",
    "customer.created": "a customer record was created through the customers API",
    "customer.updated": "customer data changed through the API",
    "customer.churned": "the customer deleted the staff member or left",
    "customer.merged": "two customer records were merged into one",
    "customer.transferred": "the customer was handed over to another staff member "
    "(payload.from_staff_external_id; the identity names the taker), who becomes the owner",
    "message.received": "the customer sent a message; payload.text holds it",
    "order.paid": "an order was paid; payload.amount, payload.order_id",
    "stage.changed": "the customer moved to another stage",
    "touch.sent": "an SOP touch was delivered",
}
