"""drawviz: a paper-exact DRAW (Gregor et al. 2015) you can look inside.

Importing drawviz is light: torch, numpy and pandas only; Jupyter pieces load on use.
"""

from .model import DRAW, DrawConfig, DrawOutput, InputError, PRESETS

__version__ = "0.1.0"
__all__ = ["DRAW", "DrawConfig", "DrawOutput", "InputError", "PRESETS", "__version__"]
