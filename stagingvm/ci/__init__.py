"""The one-shot CI run behind ``pr-test-vm test``: ``run.py`` drives build, start, check, report
and destroy; ``outcome.py`` is the record it fills in; ``report.py`` writes the run-level
reports; ``policy.py`` picks the policy a run checks.

May import every library layer (``vm``, ``checks``, ``policy``, ``nixbuild``, ...) but never
``cli``.
"""
