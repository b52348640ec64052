"""Sphinx configuration for the deepemg documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (needs the ``docs``
extra: ``pip install -c constraints.txt -e ".[docs]"``). The API reference imports the real
package, so torch and opensim must be installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout, also when deepemg is not installed

import deepemg  # noqa: E402

# -- Project -----------------------------------------------------------------------------------
project = "deepemg"
author = "The deepemg developers"
copyright = "The deepemg developers"
release = deepemg.__version__
version = release

# -- General -----------------------------------------------------------------------------------
extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "results/*.txt", "**/.ipynb_checkpoints", "Thumbs.db", ".DS_Store"]
nitpicky = False

# -- MyST --------------------------------------------------------------------------------------
myst_heading_anchors = 3  # [text](page.md#a-heading) links to headings, as on GitHub
myst_enable_extensions = ["colon_fence"]

# -- autodoc / napoleon ------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"  # the numpy docstrings document every type already
napoleon_numpy_docstring = True
napoleon_google_docstring = False
# Parameters and Attributes as plain field lists: "a, b : float" stays one entry, names with a
# trailing underscore (``subjects_``) keep it, and types are shown as written, not cross-referenced.
napoleon_use_param = False
napoleon_use_rtype = False
napoleon_use_ivar = False
napoleon_custom_sections = [("Attributes", "params_style")]

# -- HTML --------------------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"deepemg {release}"
html_static_path: list[str] = []
html_theme_options = {
    "description": "Deep-muscle EMG from kinematics with a neural musculoskeletal model",
    "fixed_sidebar": True,
}
