"""Agent definitions read from YAML files."""
