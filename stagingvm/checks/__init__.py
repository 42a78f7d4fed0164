"""Restriction checks: prove, inside a guest, what a restricted user can and cannot do.

``run_check`` plants oracles as root, runs the policy's promises and the probe battery as the
restricted user, judges everything by oracles (never by exit codes alone) and returns a
``CheckReport``; ``verdict.raise_for_verdict`` turns a report into the matching error. The probe
families are in ``catalog/``, the policy lab's seed files in ``designfiles/``.

May import every layer below it (``vm``, ``ssh``, ``images``, ``policy``, ...), never ``ci``
or ``cli``.
"""
