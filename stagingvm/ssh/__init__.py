"""SSH to the guests: stagingvm's client keys, pinned host keys, banner probe, sessions.

The only package that imports paramiko. May import the top-level leaves and ``config``.
"""
