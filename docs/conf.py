"""Sphinx configuration: MyST pages, the API reference from the docstrings (autodoc + autosummary +
numpydoc) and sphinx-gallery examples that run in the build (phantom and ../shared/data/real/)."""

from __future__ import annotations

import os
import sys
import types
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings("ignore", category=DeprecationWarning)

from bci_stream import __version__  # noqa: E402

project = "bci-stream"
author = "bci-stream developers"
copyright = "bci-stream developers, BSD-3-Clause"
version = release = __version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "benchmarks", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip",
                    "**/*.codeobj.json", "examples/README.txt"]
templates_path = ["_templates"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # README sections moved as they were: some start below level 2

# API reference: every module of both packages, each page its members (autosummary's recursive walk)
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_typehints = "none"  # numpydoc writes the parameters; type hints stay in the signature
autodoc_member_order = "bysource"
autodoc_inherit_docstrings = False  # a subclass's page says what it does, not its base's (Ray, torch, sklearn)


def _skip_library_members(app, what, name, obj, skip, options):
    """scikit-learn adds ``set_*_request`` (metadata routing) to every estimator, and a Qt signal's docstring
    is PyQt's: not ours to document (the class's docstring names its signals). A type alias such as
    ``Chunk = tuple[np.ndarray, np.ndarray]`` is not a class, though autosummary lists it as one and
    fails on its signature: its module's docstring or comment says what it holds."""
    if isinstance(obj, types.GenericAlias):
        return True
    if name.startswith("set_") and name.endswith("_request"):
        return True
    if type(obj).__name__ in ("pyqtSignal", "pyqtBoundSignal"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_library_members)

numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "plot_gallery": True,
    "abort_on_example_error": True,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}

html_theme = "pydata_sphinx_theme"
html_title = "bci-stream"
html_static_path: list[str] = []
html_theme_options = {"navigation_with_keys": False, "show_toc_level": 2, "secondary_sidebar_items": ["page-toc"]}
html_show_sourcelink = False
