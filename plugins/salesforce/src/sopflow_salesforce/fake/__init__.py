"""A protocol-faithful fake Salesforce for tests: ``org = start_demo_org()``.

Shipped with the plugin (not hidden in its tests) so SOP authors, core's
end-to-end tests and a demo can run Salesforce scenarios without an org.
Needs the ``testing`` extra (``trustme``, for its throwaway TLS CA).
"""

from sopflow_salesforce.fake.oauth import ConnectedApp
from sopflow_salesforce.fake.org import field
from sopflow_salesforce.fake.scenario import DemoOrg, start_demo_org
from sopflow_salesforce.fake.server import FakeSalesforce, RecordedRequest

__all__ = ["ConnectedApp", "DemoOrg", "FakeSalesforce", "RecordedRequest", "field", "start_demo_org"]
