"""``sopflow demo``: the seeds' scenarios end to end on embedded defaults.

``world`` starts sopflow and the fake WeCom; ``scenario`` sets the tenant up
through the public API; ``simulate`` plays weeks of customers; ``report``
reads the engine's figures back and checks them against independent counts.
"""

from sopflow.demo.run import DemoOptions, run_demo

__all__ = ["DemoOptions", "run_demo"]
