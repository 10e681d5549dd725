"""The hooks of the hello plugin: the module the entry point names."""

from sopflow_sdk import (
    ActionSpec,
    ChannelSpec,
    FieldSpec,
    JobSpec,
    RouteSpec,
    TriggerSpec,
    hookimpl,
)

from sopflow_hello.channel import CONSOLE_SETTINGS, CONSOLE_STEP_PARAMS, ConsoleChannel
from sopflow_hello.greet import greet, note, poll


@hookimpl
def register_fields(register):
    register(FieldSpec(key="hello.last_greeting", type="text", label="Last greeting"))


@hookimpl
def register_triggers(register):
    register(
        TriggerSpec(
            event_type="hello.greeted",
            description="a customer said hello through POST /plugins/hello/greet",
            payload_schema={"type": "object", "properties": {"text": {"type": "string"}}},
        )
    )


@hookimpl
def register_actions(register):
    register(ActionSpec(name="hello.note", run=note, description="record a note about the customer"))


@hookimpl
def register_channels(register):
    register(
        ChannelSpec(
            name="console",
            factory=ConsoleChannel,
            description="records what it sends",
            settings=CONSOLE_SETTINGS,
            step_params=CONSOLE_STEP_PARAMS,
        )
    )


@hookimpl
def register_routes(register):
    register(RouteSpec(path="greet", handler=greet, methods=("POST",), description="say hello"))


@hookimpl
def register_jobs(register):
    register(JobSpec(name="hello.poll", fn=poll, every_seconds=3600))
