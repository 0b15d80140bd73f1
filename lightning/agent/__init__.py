"""The reference MCP analytics agent the workshop drives (``POST /message``)."""
