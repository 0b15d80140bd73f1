"""Session fixture for the kubernetes local server (filled in by the issue that needs it)."""
