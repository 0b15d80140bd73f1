"""Session fixture for the azurite local server (filled in by the issue that needs it)."""
