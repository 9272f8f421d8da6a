"""Sphinx configuration for the skganem documentation (built offline, warnings as errors)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))
from skganem import __version__  # noqa: E402

project = "skganem"
author = "skganem developers"
release = version = __version__
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
myst_heading_anchors = 3
html_theme = "alabaster"
# No intersphinx: the build must not download anything.
