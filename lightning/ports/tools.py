"""ToolRunner: run one of the evaluated agent's tools (the reference agent's, when it is installed)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ToolRunner = Callable[[str, dict[str, Any]], Any]
"""``run_tool(tool_name, arguments) -> result`` of the agent being evaluated."""
