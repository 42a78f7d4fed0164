"""The policies shipped with stagingvm, one TOML file each (package data; no code)."""
