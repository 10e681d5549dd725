"""SQLModel tables.  Import from here so Alembic sees every table."""

from sqlmodel import SQLModel

from sopflow.models.channels import ChannelAccount
from sopflow.models.console import ConsoleSession
from sopflow.models.customers import (
    ChannelIdentity,
    Customer,
    CustomerRelation,
    CustomerTag,
    FieldDefinition,
    Staff,
)
from sopflow.models.events import Event
from sopflow.models.journeys import Journey, JourneyStage, JourneySyncTarget
from sopflow.models.keywords import KeywordRule, KeywordRuleRevision
from sopflow.models.pipelines import CustomerStage, Pipeline, Stage, StageHistory
from sopflow.models.plugin_state import PluginStateEntry
from sopflow.models.runtime_state import PendingJob, RuntimeState
from sopflow.models.segments import Segment
from sopflow.models.sops import BatchWindow, Enrollment, SendQuota, Sop, SopVersion, Touch
from sopflow.models.tenancy import SCOPES, ApiKey, Tenant, TenantPlugin
from sopflow.models.touch_status import TouchStatus

metadata = SQLModel.metadata

__all__ = [
    "SCOPES",
    "ApiKey",
    "BatchWindow",
    "ChannelAccount",
    "ChannelIdentity",
    "ConsoleSession",
    "Customer",
    "CustomerRelation",
    "CustomerStage",
    "CustomerTag",
    "Enrollment",
    "Event",
    "FieldDefinition",
    "Journey",
    "JourneyStage",
    "JourneySyncTarget",
    "KeywordRule",
    "KeywordRuleRevision",
    "PendingJob",
    "Pipeline",
    "PluginStateEntry",
    "RuntimeState",
    "Segment",
    "SendQuota",
    "Sop",
    "SopVersion",
    "Staff",
    "Stage",
    "StageHistory",
    "Tenant",
    "TenantPlugin",
    "Touch",
    "TouchStatus",
    "metadata",
]
