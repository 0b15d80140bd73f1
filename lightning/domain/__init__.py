"""Domain models and pure rules. Imports nothing of ours outside ``lightning.domain``, and no SDK."""
