"""Azure Functions blueprints, one per area, registered by ``function_app.py``."""
