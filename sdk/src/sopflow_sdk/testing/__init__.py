"""The sopflow test kit for plugin authors (and sopflow's own tests).

Install ``sopflow-sdk[testing]``; the pytest plugin in ``fixtures`` is loaded
automatically and gives you ``sopflow_app`` (an isolated app on a fresh
database), ``manual_clock``, ``api`` (an authenticated HTTP test client for a
fresh tenant), ``anon_api`` and ``stub_broker``.  ``run_due(api, until=...)``
runs time forward and delivers what falls due on the way (``testing.clock``).

The database is SQLite unless ``SOPFLOW_TEST_BACKEND=postgres``, then a
throwaway database on the server at ``SOPFLOW_TEST_POSTGRES_URL``.
"""

from sopflow_sdk.testing.clock import RunDue, run_due
from sopflow_sdk.testing.harness import ApiClient, LiveServer, TestDatabase, make_test_app

__all__ = ["ApiClient", "LiveServer", "RunDue", "TestDatabase", "make_test_app", "run_due"]
