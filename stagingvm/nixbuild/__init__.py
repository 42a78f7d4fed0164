"""Nix: a build target and its guest options turned into ``nix`` argv (``expr.py``); running
``nix build`` and importing the image it made (``build.py``).

May import the top-level leaves (``errors``, ``names``, ``progress``, ``settings``) only; the
VM layer is reached through a small protocol, never imported.
"""
