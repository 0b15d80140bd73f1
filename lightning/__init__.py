"""Lightning Loop: continuous fine-tuning for tool-calling agents.

The package is layered as ports and adapters (see ``docs/`` and the README):
``domain`` (models and rules) ← ``ports`` (protocols) ← ``services`` (use cases)
← ``adapters`` (SDKs) ← entry points (``cli``, ``function_app.py``, ``agent``).
"""

__version__ = "0.1.0"
