"""Session fixture for the cosmos local server (filled in by the issue that needs it)."""
