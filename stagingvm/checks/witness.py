"""Witnesses that a user-side script really started: root's evidence, not the user's word.

Each script's first line (``preamble``) creates ``WITNESS_DIR/<id>``, a directory root makes
before the probes, owned by root with mode 1733 (anyone may create a file, nobody but root
may list it). After the probes root lists it (``COLLECT``). A probe whose witness is missing
never ran, whatever its answer said: a login shell that prints "permission denied" or
``STAGINGVM-NA:`` for every script without running it gets "could not check". (A shell that
runs the first line and then lies is not caught by this; the oracles still see any effect.)
"""

from __future__ import annotations

from stagingvm.checks.preamble import WITNESS_DIR

SETUP = f"""mkdir -p {WITNESS_DIR} && chown root:root {WITNESS_DIR} && chmod 1733 {WITNESS_DIR} \\
  && echo WITNESS-SETUP-OK
"""

COLLECT = f"""if [ -d {WITNESS_DIR} ]; then
  find {WITNESS_DIR} -mindepth 1 -maxdepth 1 -type f -printf 'RAN\\t%f\\n'
  echo WITNESS-OK
fi
"""


def parse(output: str) -> frozenset[str] | None:
    """The ids whose witness root found; None when root's listing did not finish."""
    if "WITNESS-OK" not in output:
        return None
    ran = set()
    for line in output.splitlines():
        tag, _, ident = line.partition("\t")
        if tag == "RAN" and ident:
            ran.add(ident)
    return frozenset(ran)
