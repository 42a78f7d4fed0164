"""Fill the libvirt XML templates in ``xml/`` through ElementTree.

Every libvirt document stagingvm sends is a template from ``xml/`` (one file per libvirt object)
changed through ElementTree: text and attributes are set on parsed elements and new elements are
appended, so values are always escaped and never pasted into markup. Installed, the templates
live in the package as ``stagingvm/_xml`` (pyproject force-includes them); from a checkout they
are read from the repository's ``xml/`` directory.
"""

from __future__ import annotations

import importlib.resources
import xml.etree.ElementTree as ET
from pathlib import Path

STAGINGVM_NS = "https://stagingvm.dev/xmlns/1"
"""XML namespace of stagingvm's domain metadata (``<metadata><stagingvm:vm>``)."""
STAGINGVM_PREFIX = "stagingvm"

TEMPLATES = ("network", "pool", "volume", "domain", "accel-probe", "snapshot")


def parse(text: str) -> ET.Element:
    """Parse XML from a trusted source: our own templates, or documents libvirtd returns.

    Never used on user-supplied files (those would need a hardened parser).
    """
    return ET.fromstring(text)  # noqa: S314  # trusted: libvirtd or our templates


def template_dir() -> Path:
    """Where the templates are: the installed package data, else the checkout's ``xml/``."""
    packaged = importlib.resources.files("stagingvm") / "_xml"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "xml"


def load_template(name: str) -> ET.Element:
    """Parse template *name* (one of TEMPLATES) and return its root element (comments dropped)."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown XML template {name!r}")
    path = template_dir() / f"{name}.xml"
    return parse(path.read_text(encoding="utf-8"))


def find(root: ET.Element, path: str) -> ET.Element:
    """The element at *path* below *root*; a missing one is a broken template (a bug)."""
    found = root.find(path, {STAGINGVM_PREFIX: STAGINGVM_NS})
    if found is None:
        raise LookupError(f"template <{root.tag}> has no element {path!r}")
    return found


def set_text(root: ET.Element, path: str, text: str) -> ET.Element:
    element = find(root, path)
    element.text = text
    return element


def set_attrs(root: ET.Element, path: str, **attrs: str) -> ET.Element:
    """Set attributes on the element at *path* (``path="."`` for *root* itself)."""
    element = root if path == "." else find(root, path)
    for key, value in attrs.items():
        element.set(key, value)
    return element


def remove(root: ET.Element, path: str) -> None:
    """Remove the element at *path* (a direct or nested child of *root*)."""
    target = find(root, path)
    for parent in root.iter():
        if target in list(parent):
            parent.remove(target)
            return


def ns_tag(local: str) -> str:
    """ElementTree's ``{namespace}local`` spelling of a stagingvm metadata tag."""
    return f"{{{STAGINGVM_NS}}}{local}"


def to_xml(root: ET.Element) -> str:
    """Serialize *root* indented, with the ``stagingvm:`` prefix for our namespace."""
    # register_namespace only affects serialization prefixes; doing it here (not at import)
    # keeps importing this module free of side effects.
    ET.register_namespace(STAGINGVM_PREFIX, STAGINGVM_NS)
    copy = parse(ET.tostring(root, encoding="unicode"))
    ET.indent(copy, space="  ")
    return ET.tostring(copy, encoding="unicode") + "\n"
