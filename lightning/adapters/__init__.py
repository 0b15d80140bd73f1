"""Adapters: ports implemented on SDKs and local servers. No business rules live here."""
