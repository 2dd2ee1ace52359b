"""Where drawviz finds what it ships beside its code: the notebooks, the report's runs file and the
trained models.

In a checkout (or an editable install) they are the repository's ``notebooks/``, ``reports/runs.yaml``
and ``models/``. Installed from a wheel (a venv, ``pip install --user``, ``pip install --target``) they are
package data, in the same layout under ``drawviz/shipped/`` (pyproject.toml maps the three folders there),
found through ``importlib.resources`` wherever the package itself was put; so the runs file's
``../models/...`` paths and the notebooks' defaults hold in every install.
"""

from __future__ import annotations

import os
from importlib import resources as _importlib
from pathlib import Path

__all__ = ["home", "notebooks", "runs_file", "models", "ResourcesNotFound"]

_CHECKOUT = Path(__file__).resolve().parent.parent


class ResourcesNotFound(FileNotFoundError):
    """Neither a checkout nor an installation holds the notebooks."""


def _candidates() -> list[Path]:
    found = [Path(os.environ["DRAWVIZ_HOME"])] if os.environ.get("DRAWVIZ_HOME") else []
    shipped = _importlib.files("drawviz") / "shipped"  # an installed wheel's package data
    if isinstance(shipped, Path):  # on disk (a zipped package could not hand papermill its notebooks)
        found.append(shipped)
    found.append(_CHECKOUT)
    return found


def home() -> Path:
    """The folder holding notebooks/, reports/runs.yaml and models/: $DRAWVIZ_HOME, the installed package's
    drawviz/shipped/, or the checkout."""
    for folder in _candidates():
        if (folder / "notebooks" / "train.ipynb").is_file():
            return folder
    raise ResourcesNotFound(
        "drawviz's notebooks were not found (looked in "
        + ", ".join(str(c) for c in _candidates())
        + "); reinstall drawviz from a wheel or a checkout (pip install .), or set DRAWVIZ_HOME to a checkout"
    )


def notebooks() -> Path:
    return home() / "notebooks"


def runs_file() -> Path:
    return home() / "reports" / "runs.yaml"


def models() -> Path:
    return home() / "models"
