"""Per-invocation state shared by every command: global options, settings, the Manager.

The global callback in ``app.py`` puts one ``CliState`` in the Typer context; commands get
it with ``cli_state(ctx)``. Settings are loaded on first use (so ``--help`` and name
validation never touch config files), and the ``Manager`` (which pulls in libvirt) only when
a command needs it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from stagingvm.cli.output import Output

if TYPE_CHECKING:
    from stagingvm.config.load import ConfigLocations, LoadedSettings
    from stagingvm.settings import Settings
    from stagingvm.vm.hosts import HostSet
    from stagingvm.vm.manager import Manager


@dataclass
class CliState:
    uri: list[str] | None = None  # --uri given more than once: several hosts
    data_dir: Path | None = None
    config: Path | None = None
    debug: bool = False
    quiet: bool = False
    locations: ConfigLocations | None = None  # None: the real /etc and ~/.config
    out: Output = field(default_factory=Output)
    _loaded: LoadedSettings | None = None
    _manager: Any = None
    _hosts: Any = None

    def loaded(self) -> LoadedSettings:
        if self._loaded is None:
            from stagingvm.config.load import load_settings  # tomllib, ipaddress: not for --help

            self._loaded = load_settings(
                env=os.environ,
                flags={
                    "uri": (self.uri[0] if self.uri else None, "--uri"),
                    "hosts": (tuple(self.uri) if self.uri else None, "--uri"),
                    "data_dir": (self.data_dir, "--data-dir"),
                },
                config_file=self.config,
                locations=self.locations,
            )
            for warning in self._loaded.warnings:
                self.out.warn(warning)
            from stagingvm.datadir import shared_umask

            # A shared data dir (setgid, group-writable): what we make there is the group's.
            shared_umask(self._loaded.settings.data_dir)
        return self._loaded

    @property
    def settings(self) -> Settings:
        return self.loaded().settings

    def manager(self) -> Manager:
        if self._manager is None:
            from stagingvm.vm.manager import (
                Manager,  # pulls in libvirt: only for verbs that need it
            )

            self._manager = Manager(self.settings, progress=self.out.progress())
        manager: Manager = self._manager
        return manager

    def hosts(self) -> HostSet:
        """Every libvirt host of the settings (``hosts``, or just ``uri``)."""
        if self._hosts is None:
            from stagingvm.vm.hosts import HostSet

            def make(settings: Settings) -> Manager:
                if settings.uri == self.settings.uri:
                    return self.manager()  # one Manager (and connection) per host
                from stagingvm.vm.manager import Manager

                return Manager(settings, progress=self.out.progress())

            self._hosts = HostSet(self.settings, make)
        hosts: HostSet = self._hosts
        return hosts

    def manager_for(self, name: str) -> Manager:
        """The Manager of the host that holds VM *name* (with one host: that host's)."""
        hosts = self.hosts()
        return hosts.locate(name) if hosts.several else hosts.manager(hosts.uris[0])

    def placement(self, name: str, memory: int | None, base: str | None = None) -> Manager:
        """The Manager of the host a new VM *name* goes to (see ``HostSet.place``)."""
        hosts = self.hosts()
        chosen = hosts.place(name, memory or self.settings.memory, base=base)
        if hosts.several:
            self.out.info(f"host: {chosen.settings.uri}")
        return chosen


def cli_state(ctx: typer.Context) -> CliState:
    state = ctx.find_object(CliState)
    if state is None:  # a command invoked without the root callback: a bug
        raise RuntimeError("CLI state missing")
    return state
