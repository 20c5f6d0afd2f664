"""Sphinx configuration of wavecast's user reference: ``make docs`` builds it into docs/_build/html.

docs/README.md says why Sphinx, and how the pages are put together.
"""

from __future__ import annotations

import enum
import functools
import inspect
import re
import sys
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.ext.napoleon import GoogleDocstring
from sphinx.transforms.post_transforms import SphinxPostTransform

import wavecast

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

project = "wavecast"
author = "the wavecast authors"
copyright = "the wavecast authors"
release = wavecast.__version__
version = release

extensions = [
    "myst_parser",  # the Markdown pages: README, protocol, topics
    "sphinx.ext.autodoc",  # the API reference, from the docstrings
    "sphinx.ext.napoleon",  # the docstrings' Google style: Args:, Returns:, Raises:
]

root_doc = "index"
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# README.md here is the note for contributors, read in the repository rather than on the site.
exclude_patterns = ["_build", "README.md"]

# The docstrings are Google style (Args:, Returns:, Raises:, Attributes:) with reST inside
# (``literals``, :class: roles, :: blocks): napoleon turns the sections into reST for autodoc.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# A page documents the names in its module's __all__ (autodoc's default when a module has one);
# a class, its members, with or without a docstring (undoc-members: so that a public method isn't
# left out for want of one). Module-level data shows only with a #: comment (autodoc reads no
# other documentation for it). A class's fields are described by its docstring's Attributes:
# section; class_member() leaves out the entries that would describe them a second time.
autodoc_default_options = {
    "members": True,
    "undoc-members": True,
    "member-order": "bysource",
}
autodoc_typehints = "signature"
# A method without a docstring of its own (asyncio.Protocol's callbacks) is left out rather
# than described by its base class's docstring.
autodoc_inherit_docstrings = False

# Markdown: GitHub's heading anchors (protocol.md links to #binary-data).
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"wavecast {release}"


def class_member(app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    """Leave out of a class's page the fields that its Attributes: section already describes
    (a second entry would be a duplicate object description), and the callbacks of an interface
    from outside wavecast (asyncio.Protocol's ``connection_made``...) that have no docstring."""
    if skip or what not in ("class", "exception"):
        return None
    owner = documented_class(app)
    if owner is None:
        return None
    if inspect.isroutine(obj) and not getattr(obj, "__doc__", None):
        return any(not base.__module__.startswith("wavecast") and name in vars(base) for base in owner.__mro__[1:-1])
    if inspect.isroutine(obj) or isinstance(obj, enum.Enum) or (isinstance(obj, property) and obj.__doc__):
        return None
    return name in attributes_section(app, owner)


def documented_class(app: Sphinx) -> type | None:
    """The class whose members autodoc is going through."""
    current = app.env.current_document
    found: Any = sys.modules.get(current.autodoc_module)
    for part in current.autodoc_class.split("."):
        found = getattr(found, part, None)
    return found if inspect.isclass(found) else None


@functools.cache
def attributes_section(app: Sphinx, cls: type) -> frozenset[str]:
    """The names that the Attributes: section of ``cls``'s docstring describes."""
    lines = GoogleDocstring(inspect.getdoc(cls) or "", app.config, app, what="class", obj=cls).lines()
    names = (match[1] for line in lines if (match := re.match(r"\.\. attribute:: (.+)", line.strip())))
    return frozenset(name.strip() for entry in names for name in entry.split(","))


class RepositoryLinks(SphinxPostTransform):
    """Show a link to a repository file outside docs/ (``examples/chat/``, ``bench/RESULTS.md``)
    as that file's path: the README and the topics link to them, and the site has no page for them.

    A link to a path that exists nowhere is left to MyST, which reports it (an error in ``make docs``).
    """

    default_priority = 8  # before MyST resolves its links (9)

    def run(self, **kwargs: Any) -> None:
        for node in list(self.document.findall(addnodes.pending_xref)):
            if node.get("reftype") != "myst":
                continue
            path = self.repository_path(node)
            if path is None:
                continue
            text = node.astext()
            if text.rstrip("/") == path.rstrip("/"):
                node.replace_self(nodes.literal(path, path))
            else:
                node.replace_self(
                    nodes.inline("", "", *node.children, nodes.Text(" ("), nodes.literal(path, path), nodes.Text(")"))
                )

    def repository_path(self, node: addnodes.pending_xref) -> str | None:
        target: str = node["reftarget"]
        if node.get("refdomain") == "doc":  # MyST took it for a page: an absolute path without ".md"
            if target in self.env.all_docs or not Path(target).is_absolute():
                return None
            candidates = [Path(target + ".md"), Path(target)]
        else:
            if "://" in target or target.startswith(("#", "mailto:")):
                return None
            base = Path(node.source).parent if node.source else DOCS
            candidates = [base / target]
        for candidate in candidates:
            path = candidate.resolve()
            if path.exists() and path.is_relative_to(ROOT) and not path.is_relative_to(DOCS):
                return path.relative_to(ROOT).as_posix() + ("/" if path.is_dir() else "")
        return None


def setup(app: Sphinx) -> None:
    app.connect("autodoc-skip-member", class_member)
    app.add_post_transform(RepositoryLinks)
