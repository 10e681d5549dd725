"""One module per benchmark scenario, found by name (``s<N>_<what>.py``); see bench/run.py."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from types import ModuleType


def discover() -> dict[str, ModuleType]:
    """Every scenario module in this package, by its ``NAME``."""
    out: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name[:1] == "s" and info.name[1:2].isdigit():
            module = importlib.import_module(f"{__name__}.{info.name}")
            if module.NAME in out:
                raise RuntimeError(f"two scenario modules are named {module.NAME}")
            out[module.NAME] = module
    return out
