"""Where drawviz finds what it ships beside its code: the notebooks, the report's runs file and the
trained models.

In a checkout (or an editable install) they are the repository's ``notebooks/``, ``reports/runs.yaml``
and ``models/``. Installed from a wheel (``pip install .``) they are installed as data beside the
package, under ``<prefix>/share/drawviz/`` (pyproject.toml's data-files), in the same layout, so the
runs file's ``../models/...`` paths and the notebooks' defaults hold in both.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

__all__ = ["home", "notebooks", "runs_file", "models", "ResourcesNotFound"]

_CHECKOUT = Path(__file__).resolve().parent.parent


class ResourcesNotFound(FileNotFoundError):
    """Neither a checkout nor an installation holds the notebooks."""


def _candidates() -> list[Path]:
    found = [Path(os.environ["DRAWVIZ_HOME"])] if os.environ.get("DRAWVIZ_HOME") else []
    found.append(_CHECKOUT)
    for prefix in (sysconfig.get_path("data"), sys.prefix, sys.base_prefix):
        found.append(Path(prefix) / "share" / "drawviz")
    return found


def home() -> Path:
    """The folder holding notebooks/, reports/runs.yaml and models/ ($DRAWVIZ_HOME, the checkout, or the
    installation's share/drawviz)."""
    for folder in _candidates():
        if (folder / "notebooks" / "train.ipynb").is_file():
            return folder
    raise ResourcesNotFound(
        "drawviz's notebooks were not found (looked in "
        + ", ".join(str(c) for c in _candidates())
        + "); reinstall drawviz (pip install drawviz), or set DRAWVIZ_HOME to a checkout"
    )


def notebooks() -> Path:
    return home() / "notebooks"


def runs_file() -> Path:
    return home() / "reports" / "runs.yaml"


def models() -> Path:
    return home() / "models"
