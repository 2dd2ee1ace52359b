"""drawviz: a paper-exact DRAW (Gregor et al. 2015) you can look inside.

Importing drawviz is light: nothing runs and nothing heavy loads until a module is imported. Each name is imported
from the module that owns it (DRAW and DrawConfig from drawviz.model, data sets from drawviz.data, ...).
"""

__version__ = "0.1.0"
