"""The reference MCP analytics agent the workshop drives (``POST /message``).

Run it::

    python -m lightning.cli serve-agent --agent-id autonomous-agent --port 8080
    python -m lightning.cli simulate-traffic --agent-url http://127.0.0.1:8080 --generate 200

Modules: ``server`` (the MCP server and HTTP routes), ``core`` (query → model → tool → answer,
captured and traced), ``tools`` + ``sample_data`` (the five analytics tools over bundled data),
``models`` (which model answers), ``telemetry`` (OpenTelemetry / Application Insights),
``runtime`` (wiring from settings, serving), ``traffic`` (the simulator), ``queries`` (realistic
requests with their correct tool calls). Nothing here runs at import.
"""
