"""``sopflow demo``: the seeds' scenarios end to end on embedded defaults.

The distribution ``sopflow-demo`` is a plugin only in that it adds the
``sopflow demo`` command (``plugin.register_commands``).  The demo itself is an
application built on sopflow, not a plugin of it, which is why it imports
``sopflow`` (core) where plugins import only ``sopflow_sdk``: it starts the app
in-process on the manual clock and runs the dispatch loop between simulated
happenings (``world``), and checks the engine's figures against the database
(``report``, ``progress`` and ``simulate`` read ``sopflow.models``).  Everything
else goes through the public HTTP API and the fake WeCom of ``sopflow_wecom``.

``world`` starts sopflow and the fake WeCom; ``scenario`` sets the tenant up
through the public API; ``simulate`` plays weeks of customers; ``report``
reads the engine's figures back and checks them against independent counts;
``run`` puts them together (``run_demo``).  Nothing is imported here: every
``sopflow`` start loads the plugin, and only ``sopflow demo`` needs the rest.
"""
