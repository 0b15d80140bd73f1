"""Session fixture for the model_server local server (filled in by the issue that needs it)."""
