"""sopflow_sdk: everything a plugin author imports.

Plugins import from here and nowhere else in sopflow, so core can change its
insides without breaking them.
"""

import pluggy

from sopflow_sdk.channel import (
    ATTACHMENT_KINDS,
    MAX_ATTACHMENTS,
    TOUCHPOINTS,
    Attachment,
    Capabilities,
    Channel,
    ChannelContext,
    CustomerCap,
    OutboundMessage,
    SendReceipt,
)
from sopflow_sdk.errors import (
    AmbiguousSendError,
    ConfigError,
    DeferredError,
    FatalError,
    PluginError,
    RetriableError,
    ScopeError,
    SignatureError,
    SkippableError,
    SopflowError,
    UnsupportedCapabilityError,
)
from sopflow_sdk.events import STANDARD_EVENTS
from sopflow_sdk.host import ChannelAccountView, CustomerView, FieldView, Host, IdentityView
from sopflow_sdk.secrets import Secret, redact
from sopflow_sdk.settings_schema import SETTING_TYPES, Setting, SettingsSchema
from sopflow_sdk.specs import (
    FIELD_TYPES,
    LEGACY_ACTION_TYPE,
    SEND_ACTION_KEYS,
    ActionSpec,
    ChannelSpec,
    ConsolePage,
    ConsoleRequest,
    FieldSpec,
    Identity,
    InboundRequest,
    InboundResponse,
    IngestEvent,
    JobSpec,
    MigrationsSpec,
    PipelineSpec,
    Relation,
    RouteSpec,
    StageSpec,
    TemplateCall,
    TemplateFunctionSpec,
    TriggerSpec,
    WorkerServiceSpec,
)
from sopflow_sdk.state import PluginState, PluginTransaction

#: Decorate hook implementations with this marker.
hookimpl = pluggy.HookimplMarker("sopflow")

__all__ = [
    "ATTACHMENT_KINDS",
    "FIELD_TYPES",
    "LEGACY_ACTION_TYPE",
    "MAX_ATTACHMENTS",
    "SEND_ACTION_KEYS",
    "SETTING_TYPES",
    "STANDARD_EVENTS",
    "TOUCHPOINTS",
    "ActionSpec",
    "AmbiguousSendError",
    "Attachment",
    "Capabilities",
    "Channel",
    "ChannelAccountView",
    "ChannelContext",
    "ChannelSpec",
    "ConfigError",
    "ConsolePage",
    "ConsoleRequest",
    "CustomerCap",
    "CustomerView",
    "DeferredError",
    "FatalError",
    "FieldSpec",
    "FieldView",
    "Host",
    "Identity",
    "IdentityView",
    "InboundRequest",
    "InboundResponse",
    "IngestEvent",
    "JobSpec",
    "MigrationsSpec",
    "OutboundMessage",
    "PipelineSpec",
    "PluginError",
    "PluginState",
    "PluginTransaction",
    "Relation",
    "RetriableError",
    "RouteSpec",
    "ScopeError",
    "Secret",
    "SendReceipt",
    "Setting",
    "SettingsSchema",
    "SignatureError",
    "SkippableError",
    "SopflowError",
    "StageSpec",
    "TemplateCall",
    "TemplateFunctionSpec",
    "TriggerSpec",
    "UnsupportedCapabilityError",
    "WorkerServiceSpec",
    "hookimpl",
    "redact",
]
