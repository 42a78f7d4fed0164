"""Discovery: what the target really is, found before any probe runs.

``scripts`` holds the two fixed scripts (one run as the policy's user, one as root),
``parse`` turns their output into ``facts.TargetFacts`` (pure), ``sudorules`` compares sudo
rules by the file they run, and ``plan`` turns the facts into the probes' preamble values
and the ``{probe id: reason}`` map of probes whose premise is absent (root-side facts only).
"""
