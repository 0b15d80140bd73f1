"""Session fixtures that start local servers once per test session (one module per server)."""
