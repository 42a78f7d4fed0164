"""Domain XML for a stagingvm guest: render it, read it back, and tell ours from others'.

A domain is stagingvm's when its ``<metadata>`` holds a ``<stagingvm:vm>`` element in the
namespace ``https://stagingvm.dev/xmlns/1``; ``list``/``status``/``destroy`` never touch any
other domain, whatever its name. Credentials (SSH keys) travel as SMBIOS OEM strings that
systemd reads as credentials (``io.systemd.credential:NAME=VALUE``).
"""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from stagingvm.errors import InvalidInputError, NotFoundError
from stagingvm.virt import xmlrender
from stagingvm.virt.connection import error_code, lookup_or_none

if TYPE_CHECKING:
    import libvirt

CREDENTIAL_PREFIX = "io.systemd.credential:"
BINARY_CREDENTIAL_PREFIX = "io.systemd.credential.binary:"
CREDENTIAL_NAME_RE = re.compile(r"[A-Za-z0-9_@-][A-Za-z0-9_.@-]{0,254}")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# virDomainState values (stable ABI), named as `virsh domstate` names them.
STATE_NAMES = {
    0: "no state",
    1: "running",
    2: "blocked",
    3: "paused",
    4: "shutting down",
    5: "shut off",
    6: "crashed",
    7: "suspended",
}
RUNNING_STATES = {1, 2}
DEAD_STATES = {5, 6}


def format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


@dataclass(frozen=True)
class Metadata:
    """stagingvm's facts about one of its domains (the ownership mark)."""

    created_at: datetime
    base: str
    base_volume: str
    pr_ref: str | None = None
    label: str | None = None
    host: str | None = None
    """The libvirt URI the VM was placed through (``stagingvm.vm.hosts``)."""

    def to_element(self) -> ET.Element:
        root = ET.Element(xmlrender.ns_tag("vm"))
        ET.SubElement(root, xmlrender.ns_tag("created-at")).text = format_time(self.created_at)
        base = ET.SubElement(root, xmlrender.ns_tag("base"), {"volume": self.base_volume})
        base.text = self.base
        if self.pr_ref is not None:
            ET.SubElement(root, xmlrender.ns_tag("pr-ref")).text = self.pr_ref
        if self.label is not None:
            ET.SubElement(root, xmlrender.ns_tag("label")).text = self.label
        if self.host is not None:
            ET.SubElement(root, xmlrender.ns_tag("host")).text = self.host
        return root

    @classmethod
    def from_element(cls, element: ET.Element) -> Metadata | None:
        # Children are matched by local name: libvirt's setMetadata may drop their namespace.
        children = {child.tag.rpartition("}")[2]: child for child in element}
        created = parse_time(children["created-at"].text if "created-at" in children else None)
        base = children.get("base")
        if created is None or base is None:
            return None
        pr_ref = children.get("pr-ref")
        label = children.get("label")
        host = children.get("host")
        return cls(
            created_at=created,
            base=base.text or "",
            base_volume=base.get("volume", ""),
            pr_ref=pr_ref.text if pr_ref is not None else None,
            label=label.text if label is not None else None,
            host=host.text if host is not None else None,
        )


@dataclass(frozen=True)
class DomainSpec:
    name: str
    uuid: str
    domain_type: str  # "kvm" | "qemu"
    memory_mib: int
    vcpus: int
    disk_path: str
    network: str
    mac: str
    console_log: Path
    metadata: Metadata
    credentials: Mapping[str, str] = field(default_factory=dict)


def credential_entry(name: str, value: str) -> str:
    """One OEM string; values systemd could not take verbatim go base64 as binary credentials."""
    if CREDENTIAL_NAME_RE.fullmatch(name) is None:
        raise InvalidInputError(f"invalid credential name {name!r}")
    if value.isprintable():
        return f"{CREDENTIAL_PREFIX}{name}={value}"
    return f"{BINARY_CREDENTIAL_PREFIX}{name}={base64.b64encode(value.encode()).decode()}"


def parse_credential(entry: str) -> tuple[str, str] | None:
    for prefix, binary in ((CREDENTIAL_PREFIX, False), (BINARY_CREDENTIAL_PREFIX, True)):
        if entry.startswith(prefix):
            name, sep, value = entry[len(prefix) :].partition("=")
            if not sep:
                return None
            return name, base64.b64decode(value).decode() if binary else value
    return None


XML_FIELDS: tuple[tuple[str, str, str | None], ...] = (
    # (field of DomainSpec and of DomainFacts, XPath in the domain XML, attribute; None: text)
    ("domain_type", ".", "type"),
    ("name", "name", None),
    ("memory_mib", "memory", None),  # the template says unit='MiB'; parsed in any unit
    ("vcpus", "vcpu", None),
    ("disk_path", "devices/disk/source", "file"),
    ("mac", "devices/interface/mac", "address"),
    ("network", "devices/interface/source", "network"),
    ("console_log", "devices/serial/log", "file"),
)
"""One table for rendering (``render_domain``) and reading back (``parse_domain``)."""


def render_domain(spec: DomainSpec) -> str:
    """The domain's XML from ``xml/domain.xml``."""
    if spec.domain_type not in ("kvm", "qemu"):
        raise ValueError(f"domain type must be kvm or qemu, not {spec.domain_type!r}")
    root = xmlrender.load_template("domain")
    for field_name, path, attr in XML_FIELDS:
        value = str(getattr(spec, field_name))
        if attr is None:
            xmlrender.set_text(root, path, value)
        else:
            xmlrender.set_attrs(root, path, **{attr: value})
    xmlrender.set_text(root, "uuid", spec.uuid)
    metadata = xmlrender.find(root, "metadata")
    metadata.clear()
    metadata.append(spec.metadata.to_element())
    oem = xmlrender.find(root, "sysinfo/oemStrings")
    for cred_name, value in sorted(spec.credentials.items()):
        ET.SubElement(oem, "entry").text = credential_entry(cred_name, value)
    if spec.domain_type == "kvm":
        # Under KVM the guest may use the host CPU as is; TCG keeps QEMU's default model.
        features = list(root).index(xmlrender.find(root, "features"))
        root.insert(features + 1, ET.Element("cpu", {"mode": "host-passthrough"}))
    return xmlrender.to_xml(root)


@dataclass(frozen=True)
class DomainFacts:
    """What stagingvm reads back from a domain's XML."""

    name: str
    domain_type: str
    memory_mib: int
    vcpus: int
    mac: str | None
    network: str | None
    disk_path: str | None
    console_log: str | None
    credentials: dict[str, str]
    metadata: Metadata | None


def _memory_mib(element: ET.Element | None) -> int:
    if element is None or not element.text:
        return 0
    scale = {
        "b": 1 / 1024**2,
        "bytes": 1 / 1024**2,
        "KiB": 1 / 1024,
        "k": 1 / 1024,
        "MiB": 1,
        "M": 1,
        "GiB": 1024,
        "G": 1024,
    }
    return int(int(element.text) * scale.get(element.get("unit", "KiB"), 1 / 1024))


def parse_domain(xml: str) -> DomainFacts:
    root = xmlrender.parse(xml)
    meta_el = root.find(f"metadata/{xmlrender.ns_tag('vm')}")
    found: dict[str, str | None] = {}
    for field_name, path, attr in XML_FIELDS:
        element = root.find(path)
        if element is None:
            found[field_name] = None
        else:
            found[field_name] = element.text if attr is None else element.get(attr)
    credentials: dict[str, str] = {}
    for entry in root.findall("sysinfo/oemStrings/entry"):
        parsed = parse_credential(entry.text or "")
        if parsed is not None:
            credentials[parsed[0]] = parsed[1]
    return DomainFacts(
        name=found["name"] or "",
        domain_type=found["domain_type"] or "",
        memory_mib=_memory_mib(root.find("memory")),  # the text, scaled by its unit
        vcpus=int(found["vcpus"] or 0),
        mac=found["mac"],
        network=found["network"],
        disk_path=found["disk_path"],
        console_log=found["console_log"],
        credentials=credentials,
        metadata=Metadata.from_element(meta_el) if meta_el is not None else None,
    )


def lookup(conn: libvirt.virConnect, name: str) -> libvirt.virDomain | None:
    return lookup_or_none(conn.lookupByName, name, "VIR_ERR_NO_DOMAIN")


def facts(dom: libvirt.virDomain) -> DomainFacts:
    return parse_domain(str(dom.XMLDesc(0)))


def owned_domains(conn: libvirt.virConnect) -> list[tuple[libvirt.virDomain, DomainFacts]]:
    """Every stagingvm domain with its facts (domains that vanish meanwhile are skipped)."""
    import libvirt

    found = []
    for dom in conn.listAllDomains(0):
        try:
            dom_facts = facts(dom)
        except libvirt.libvirtError as exc:
            if error_code(exc) == libvirt.VIR_ERR_NO_DOMAIN:
                continue  # another tool removed a transient domain while we listed
            raise
        if dom_facts.metadata is not None:
            found.append((dom, dom_facts))
    return found


def require_owned(conn: libvirt.virConnect, name: str) -> tuple[libvirt.virDomain, DomainFacts]:
    """The stagingvm domain *name*; NotFoundError if missing or not stagingvm's."""
    dom = lookup(conn, name)
    if dom is None:
        raise NotFoundError(f"no VM named {name!r}", hint=_LIST_HINT)
    return dom, owned(dom, name)


_LIST_HINT = "`pr-test-vm list` shows the VMs stagingvm manages"


def owned(dom: libvirt.virDomain, name: str) -> DomainFacts:
    """The facts of domain *dom* (named *name*); NotFoundError if it is not stagingvm's."""
    found = facts(dom)
    if found.metadata is None:
        raise NotFoundError(
            f"domain {name!r} exists but is not managed by stagingvm (no stagingvm metadata)",
            hint=_LIST_HINT,
        )
    return found


def state(dom: libvirt.virDomain) -> int:
    return int(dom.state(0)[0])


def state_name(code: int) -> str:
    return STATE_NAMES.get(code, f"state {code}")


def power_off(dom: libvirt.virDomain) -> None:
    """Pull the plug (if it runs): the guest is throwaway."""
    if dom.isActive():
        dom.destroy()


def undefine(dom: libvirt.virDomain) -> None:
    """Remove the definition with whatever libvirt keeps beside it (saves, snapshots, NVRAM)."""
    import libvirt

    kept = libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    # A driver that knows no NVRAM (libvirt's test driver) refuses that flag: try without it,
    # and keep the snapshots' flag (an undefine without it fails while snapshots exist).
    for flags in (kept | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM, kept):
        try:
            dom.undefineFlags(flags)
            return
        except libvirt.libvirtError:
            continue
    dom.undefine()
