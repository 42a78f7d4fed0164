"""The policy lab's design files: the user's seed wrapper and sudoers, installed into lab guests
(package data; no code)."""
