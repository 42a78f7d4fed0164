"""SSH to the guests: stagingvm's client keys, pinned host keys, banner probe, sessions."""
