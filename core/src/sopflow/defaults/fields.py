"""Built-in customer fields every tenant has (read-only, maintained by sopflow)."""

from sopflow_sdk import FieldSpec, hookimpl


@hookimpl(trylast=True)
def register_fields(register):  # type: ignore[no-untyped-def]
    register(
        FieldSpec(
            "first_added_at",
            "datetime",
            label="First added",
            description="when the customer first reached the business",
        )
    )
    register(
        FieldSpec(
            "last_message_at",
            "datetime",
            label="Last message",
            description="when the customer last sent a message on any channel",
        )
    )
