"""Python packages the Slicer glue needs per feature, and what to pip-install (asking first).

Slicer >= 5.12 bundles pydicom 3.0.2 and highdicom 0.27; Slicer 5.10 bundles pydicom 2.4.4
and no highdicom. Never imports slicer, vtk, qt or ctk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping



@dataclass(frozen=True)
class PipRequirement:
    import_name: str
    distribution: str
    minimum: str
    why: str

    @property
    def spec(self) -> str:
        return f"{self.distribution}>={self.minimum}"


#: pydicom is never allowed below this (highdicom >= 0.27 needs it; it is the floor we
#: add to every install so pip cannot resolve to an older pydicom).
PYDICOM_FLOOR = "3.0.1"

REQUIREMENTS: dict[str, PipRequirement] = {
    "pydicom": PipRequirement("pydicom", "pydicom", PYDICOM_FLOOR, "reading and writing DICOM"),
    "highdicom": PipRequirement("highdicom", "highdicom", "0.27", "DICOM SEG (LABELMAP) encoding and decoding"),
    "SimpleITK": PipRequirement("SimpleITK", "SimpleITK", "2.2", "reading images and .seg.nrrd"),
    "slicerio": PipRequirement("slicerio", "slicerio", "1.1", "reading .seg.nrrd segment metadata"),
    "filelock": PipRequirement("filelock", "filelock", "3.12", "one migration per run folder at a time"),
}

#: Which packages each feature of the module needs.
FEATURES: dict[str, tuple[str, ...]] = {
    "load": ("pydicom", "highdicom"),
    "export": ("pydicom", "highdicom"),
    "synthetic": ("pydicom",),
    "migrate": ("pydicom", "highdicom", "SimpleITK", "slicerio", "filelock"),
    "compare": ("pydicom",),
}


def parse_version(text: str) -> tuple[int, ...]:
    """Release numbers of a version string, parsed by ``packaging.version`` (PEP 440):
    ``"3.0.2rc1"`` -> (3, 0, 2); () when the string is not a PEP 440 version."""
    from packaging.version import InvalidVersion, Version

    try:
        return Version(str(text).strip()).release
    except InvalidVersion:
        return ()


def version_at_least(installed: str, minimum: str) -> bool:
    a, b = parse_version(installed), parse_version(minimum)
    n = max(len(a), len(b))
    return a + (0,) * (n - len(a)) >= b + (0,) * (n - len(b))


@dataclass(frozen=True)
class DependencyPlan:
    """What to pip-install before a feature runs (empty ``requirements`` = nothing)."""

    requirements: list[str]
    missing: list[str]
    outdated: list[str]
    restart_recommended: bool
    message: str

    @property
    def needed(self) -> bool:
        return bool(self.requirements)


def dependency_plan(installed: Mapping[str, str | None], features: Iterable[str]) -> DependencyPlan:
    """Decide what to install.

    Parameters
    ----------
    installed : distribution name -> installed version, or None when missing
        (``importlib.metadata.version``; see :func:`installed_versions`).
    features : keys of :data:`FEATURES`.

    Rules: only missing or too old packages are listed; requirement strings are lower
    bounds only (never ``==`` pins, never upper bounds), and whenever anything is installed
    ``pydicom>=3.0.1`` is added so no resolution can downgrade pydicom below 3.0.1.
    Upgrading a package Slicer has already imported (pydicom on Slicer 5.10, which bundles
    2.4.4) needs a restart.

    Raises
    ------
    ValueError
        An unknown feature name (a programming error, not a user's).
    """
    names: list[str] = []
    for feature in features:
        if feature not in FEATURES:
            raise ValueError(f"unknown feature {feature!r}; known: {', '.join(FEATURES)}")
        for n in FEATURES[feature]:
            if n not in names:
                names.append(n)
    missing, outdated, reqs = [], [], []
    for n in names:
        req = REQUIREMENTS[n]
        version = installed.get(req.distribution)
        if version is None:
            missing.append(req.distribution)
            reqs.append(req.spec)
        elif not version_at_least(version, req.minimum):
            outdated.append(f"{req.distribution} {version} (< {req.minimum})")
            reqs.append(req.spec)
    if reqs and not any(r.startswith("pydicom") for r in reqs):
        reqs.append(REQUIREMENTS["pydicom"].spec)
    restart = any(o.startswith("pydicom ") for o in outdated)
    if not reqs:
        message = ""
    else:
        lines = ["AdaptiveBrushDicom needs these Python packages:"]
        lines += [f"  - {r}" for r in reqs]
        if missing:
            lines.append("Missing: " + ", ".join(missing) + ".")
        if outdated:
            lines.append("Too old: " + ", ".join(outdated) + ".")
        if restart:
            lines.append(
                "pydicom is already loaded by Slicer's DICOM module; restart Slicer after the "
                "upgrade. Other DICOM plugins of this Slicer version were built against the old pydicom."
            )
        lines.append("Install them now with pip?")
        message = "\n".join(lines)
    return DependencyPlan(reqs, missing, outdated, restart, message)


def installed_versions(distributions: Iterable[str] | None = None) -> dict[str, str | None]:
    """Installed versions (``importlib.metadata``) of the distributions in :data:`REQUIREMENTS`."""
    from importlib.metadata import PackageNotFoundError, version

    result: dict[str, str | None] = {}
    for name in distributions or [r.distribution for r in REQUIREMENTS.values()]:
        try:
            result[name] = version(name)
        except PackageNotFoundError:
            result[name] = None
    return result


def stale_imports(loaded: Mapping[str, str | None], installed: Mapping[str, str | None]) -> list[str]:
    """Packages that were already imported when a newer version was installed.

    Parameters
    ----------
    loaded : import name -> ``__version__`` of the module object in ``sys.modules`` (taken
        *before* installing; missing = not imported).
    installed : distribution name -> version now installed (:func:`installed_versions`).

    A stale module keeps running until Slicer restarts (Python does not reload it), so a
    feature that needs the new version must not run now (Slicer 5.10: pydicom 2.4.4).
    """
    stale = []
    for req in REQUIREMENTS.values():
        before = loaded.get(req.import_name)
        now = installed.get(req.distribution)
        if before and now and parse_version(before) != parse_version(now):
            stale.append(f"{req.distribution} {before} (now {now} installed)")
    return stale


def restart_message(stale: Iterable[str]) -> str:
    """What to tell the user after installing over already imported packages."""
    return (
        "Installed the Python packages, but Slicer has already loaded an older version of "
        + ", ".join(stale)
        + ". Restart Slicer, then repeat the operation (nothing was loaded or exported)."
    )


#: Features found usable in this process (a Slicer session): what :func:`ensure` skips.
#: A package Slicer has imported stays importable until Slicer exits.
session_usable: set[str] = set()


def ensure(
    features: Iterable[str],
    *,
    install: Callable[[DependencyPlan], bool],
    notify: Callable[[str], None],
    testing: bool = False,
    loaded: Mapping[str, str | None] | None = None,
    versions: Callable[[], Mapping[str, str | None]] | None = None,
    usable: set[str] | None = None,
) -> bool:
    """The install-on-first-use flow of the Slicer module, with the Slicer calls passed in.

    ``install(plan)`` asks the user and installs (False = declined); ``notify(text)`` shows
    a message; ``loaded`` is ``{import name: __version__}`` of the modules already imported
    (default: read from ``sys.modules``). Returns True only when the features can run *now*:
    never in testing mode with something missing, and not after upgrading a package that
    was already imported (Slicer 5.10's pydicom 2.4.4), which needs a restart.

    ``usable`` (the glue passes :data:`session_usable`) remembers the features found usable:
    they are not checked again (reading package metadata costs ~4-14 ms, on every SEG load
    otherwise). Only successes are remembered; a declined or restart-needing install is
    asked again next time.
    """
    import importlib
    import sys

    features = list(features)
    if usable is not None and all(f in usable for f in features):
        return True
    versions = versions or installed_versions
    plan = dependency_plan(versions(), features)
    if not plan.needed:
        if usable is not None:
            usable.update(features)
        return True
    if testing:  # never change the Python environment from a test run
        notify("missing Python packages in testing mode: " + " ".join(plan.requirements))
        return False
    if loaded is None:
        loaded = {r.import_name: getattr(sys.modules.get(r.import_name), "__version__", None) for r in REQUIREMENTS.values()}
    if not install(plan):
        return False
    importlib.invalidate_caches()
    now = versions()
    stale = stale_imports(loaded, now)
    if stale:
        notify(restart_message(stale))
        return False
    ok = not dependency_plan(now, features).needed
    if ok and usable is not None:
        usable.update(features)
    return ok
