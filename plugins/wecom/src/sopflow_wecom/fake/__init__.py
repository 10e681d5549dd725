"""A protocol-faithful fake WeCom for tests: ``with FakeWeCom() as fake: fake.base_url``.

Shipped with the plugin (not hidden in its tests) so SOP authors and core's
end-to-end tests can run WeCom scenarios without a corp, a network or waiting.
"""

from sopflow_wecom.fake.clock import FakeClock
from sopflow_wecom.fake.server import FakeWeCom
from sopflow_wecom.fake.state import APP_MESSAGE_LIMITS, DOCUMENTED_LIMITS, RecordedRequest

__all__ = ["APP_MESSAGE_LIMITS", "DOCUMENTED_LIMITS", "FakeClock", "FakeWeCom", "RecordedRequest"]
