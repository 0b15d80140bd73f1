"""Check a tool call's arguments against the tool's JSON Schema (the part tool schemas use).

Used where a person states the right call (``label-episode --expected-arguments``, the HTTP label
endpoint, golden-set files) so nothing enters ground truth that the agent could not have sent. Covers
the JSON Schema keywords function-tool parameters use: ``type`` (object, string, integer, number,
boolean, array, null, or a list of them), ``properties``, ``required``, ``additionalProperties``
(false or a schema), ``enum``, ``const``, ``minimum``/``maximum`` (and exclusive ones), ``minLength``/
``maxLength``, ``pattern``, ``items``, ``minItems``/``maxItems``. Unknown keywords are ignored, as
JSON Schema itself does.
"""

from __future__ import annotations

import re
from typing import Any

from lightning.domain.agent import AgentDefinition

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
    "integer": (int,),
    "number": (int, float),
    "null": (type(None),),
}


def _is(value: Any, kind: str) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(kind, (object,)))


def schema_problems(value: Any, schema: dict[str, Any], path: str = "arguments") -> list[str]:
    """Every way ``value`` breaks ``schema``, as short phrases naming the path (empty: valid)."""
    problems: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_is(value, k) for k in kinds):
            return [f"{path} must be {' or '.join(kinds)}, got {type(value).__name__} {value!r}"]
    if "const" in schema and value != schema["const"]:
        problems.append(f"{path} must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{path} must be one of {', '.join(map(repr, schema['enum']))}, got {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{path} must be >= {schema['minimum']}, got {value}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{path} must be <= {schema['maximum']}, got {value}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            problems.append(f"{path} must be > {schema['exclusiveMinimum']}, got {value}")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            problems.append(f"{path} must be < {schema['exclusiveMaximum']}, got {value}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(f"{path} must have at least {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{path} must have at most {schema['maxLength']} characters")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            problems.append(f"{path} must match {schema['pattern']!r}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            problems.append(f"{path} must have at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"{path} must have at most {schema['maxItems']} items")
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                problems.extend(schema_problems(item, items, f"{path}[{index}]"))
    if isinstance(value, dict):
        properties: dict[str, Any] = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                problems.append(f"{path}.{name} is required")
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                problems.extend(schema_problems(item, properties[name], f"{path}.{name}"))
            elif extra is False:
                problems.append(f"{path}.{name} is not a parameter of this tool")
            elif isinstance(extra, dict):
                problems.extend(schema_problems(item, extra, f"{path}.{name}"))
    return problems


def call_problems(agent: AgentDefinition, tool: str, arguments: Any) -> list[str]:
    """Why ``tool(arguments)`` is not a call ``agent`` could make (empty: it is)."""
    spec = agent.tool(tool)
    if spec is None:
        return [f"{tool!r} is not one of {agent.id}'s tools ({', '.join(agent.tool_names)})"]
    if not isinstance(arguments, dict):
        return [f"arguments must be a JSON object, got {type(arguments).__name__}"]
    return schema_problems(arguments, spec.parameters)
