"""Provenance of a run: git commit and dirty flag, package versions.

Stored in every table's pyarrow schema metadata and in ``metadata.json`` so that a table
carries its own story (``docs/conventions.md`` section 5).
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

import freeness_lab

#: distributions whose versions are recorded
PACKAGES: tuple[str, ...] = ("freeness-lab", "numpy", "scipy", "pandas", "pyarrow", "joblib",
                             "hydra-core", "omegaconf", "matplotlib", "threadpoolctl")


def _git(*args: str) -> str | None:
    root = Path(freeness_lab.__file__).resolve().parents[1]
    try:
        out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_state() -> dict[str, object]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the source tree of the package.

    ``None`` when the package is not inside a git checkout (e.g. installed from a wheel).
    """
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def package_versions() -> dict[str, str | None]:
    """Installed version of each of :data:`PACKAGES` (``None`` if absent), and Python's."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
