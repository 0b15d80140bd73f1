"""Use cases: plain functions over ports. Imports the domain and ports only — never an SDK or adapter."""
