"""The embedded default backend: one SQLite file (WAL) under ``LIGHTNING_HOME``."""
