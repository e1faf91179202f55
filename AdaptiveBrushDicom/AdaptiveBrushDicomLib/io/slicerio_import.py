"""``import slicerio`` without importing :mod:`importlib.metadata` for its ``__version__``.

slicerio's ``__init__`` runs ``from importlib.metadata import version`` and
``version("slicerio")``. In an ``abdicom decode`` nothing else needs
:mod:`importlib.metadata`, and importing it (it pulls in the ``email`` package) plus the
distribution search costs 40-90 ms of the whole process. :func:`import_slicerio` imports
slicerio while a small stand-in answers ``importlib.metadata.version`` from the
``<name>-<version>.dist-info/METADATA`` file that the real lookup would read first (the
same ``Version:`` field, the same ``sys.path`` order). Anything it cannot answer that way
(another attribute, a package found as an egg or in a zip, no such package) goes to the
real :mod:`importlib.metadata`, which is then imported as usual. The stand-in is in
``sys.modules`` only during that one import; when :mod:`importlib.metadata` or slicerio is
imported already, this is a plain ``import slicerio``.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import types
from typing import Any

_LOCK = threading.Lock()
_NAME = "importlib.metadata"


def _normal(name: str) -> str:
    """A distribution name compared as the real lookup compares it (PEP 503, ``-`` as ``_``)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def dist_info_version(name: str) -> str | None:
    """The ``Version:`` of the first ``<name>-*.dist-info/METADATA`` along ``sys.path``, or
    None when the first match of ``name`` on a path entry is anything else (an egg-info, a
    zip, several dist-infos, no METADATA) or there is none."""
    wanted = _normal(name)
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            if os.path.isfile(entry):  # a zip on sys.path: only the real lookup reads those
                return None
            continue
        found = [n for n in names if n.lower().endswith((".dist-info", ".egg-info"))
                 and _normal(n.rsplit(".", 1)[0].split("-", 1)[0]) == wanted]
        if not found:
            continue
        if len(found) != 1 or not found[0].lower().endswith(".dist-info"):
            return None
        try:
            with open(os.path.join(entry or ".", found[0], "METADATA"), encoding="utf-8") as fh:
                for line in fh:
                    if not line.strip():
                        break  # end of the header fields
                    if line.startswith("Version:"):
                        return line[len("Version:"):].strip()
        except OSError:
            return None
        return None
    return None


def _stand_in() -> types.ModuleType:
    """A module answering ``version`` (and ``PackageNotFoundError``) without the real one."""
    module = types.ModuleType(_NAME)

    class PackageNotFoundError(ModuleNotFoundError):
        """No such distribution (as the real ``importlib.metadata.PackageNotFoundError``)."""

    def real() -> Any:
        if sys.modules.get(_NAME) is module:
            del sys.modules[_NAME]
        import importlib.metadata

        return importlib.metadata

    def version(name: str) -> str:
        """The installed version of ``name``.

        Raises
        ------
        PackageNotFoundError
            No such distribution (the real lookup said so).
        """
        found = dist_info_version(name)
        if found is not None:
            return found
        metadata = real()
        try:
            return str(metadata.version(name))
        except metadata.PackageNotFoundError:
            raise PackageNotFoundError(name) from None

    def __getattr__(attr: str) -> Any:
        """PEP 562: any other public name comes from the real module.

        Raises
        ------
        AttributeError
            A dunder name (``__path__``: the import system asks; a module has none).
        """
        if attr.startswith("__"):
            raise AttributeError(attr)
        return getattr(real(), attr)

    module.version = version  # type: ignore[attr-defined]
    module.PackageNotFoundError = PackageNotFoundError  # type: ignore[attr-defined]
    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module


def import_slicerio() -> Any:
    """The ``slicerio`` module (imported now if it was not yet; see the module docstring)."""
    if "slicerio" in sys.modules or _NAME in sys.modules:
        import slicerio

        return slicerio
    with _LOCK:
        stand_in = _stand_in()
        sys.modules[_NAME] = stand_in
        try:
            import slicerio
        finally:
            if sys.modules.get(_NAME) is stand_in:
                del sys.modules[_NAME]
    return slicerio


__all__ = ["dist_info_version", "import_slicerio"]
