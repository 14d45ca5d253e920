"""PEP 562 lazy exports: a package's public names imported from their modules on first use."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any, Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(package: str, exports: Mapping[str, tuple[str, ...]]
                 ) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package``, whose public names ``exports`` lists by
    module (relative to it). A name is imported from its module when first used and then kept in the package; any
    other name that is a submodule is imported too (``qannealq.solve`` after ``import qannealq`` alone, as the
    eager imports made it)."""
    home = {name: module for module, names in exports.items() for name in names}
    namespace = sys.modules[package].__dict__

    def __getattr__(name: str) -> Any:
        if name in home:
            value = getattr(importlib.import_module(f"{package}.{home[name]}"), name)
            namespace[name] = value
            return value
        if not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*namespace, *home})

    return sorted(home), __getattr__, __dir__
