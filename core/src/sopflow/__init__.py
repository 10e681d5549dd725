"""sopflow: run customer follow-up SOPs over WeCom, WeChat and other channels."""

__version__ = "0.1.0"
