"""User settings: the keys a user may set and where each value came from (``keys.py``, with
``Source``), and loading them from the config file and the environment (``load.py``).

May import only the top-level leaves (``errors``, ``names``, ``settings``).
"""
