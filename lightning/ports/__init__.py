"""Ports: the protocols services depend on. Adapters implement them; tests fake them."""
