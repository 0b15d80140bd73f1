"""Reading the Bicep offline with ``pycep-parser``: the templates, how ``main.bicep`` binds each module's
parameters, and a small evaluator for the expressions of ``main.bicep``'s own checks.

In pycep's output a string literal and a reference to a parameter or variable look alike (``'cosmos'``
and ``cosmosDatabaseName`` both come back as plain strings), so ``Template.trace`` treats a string that
names a parameter or variable of the template as a reference. It follows a module parameter to the
argument ``main.bicep`` passes, a module output (``cosmos.outputs.endpoint``) into the module, and a
resource's ``.name`` to its name, until it reaches where the value is made. Expressions it cannot follow
(``functionIdentity.properties.clientId``, ``subscription()``…) come back as pycep's nested dicts, with
the template they belong to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[3]
BICEP = ROOT / "infra" / "bicep"
MAIN = BICEP / "main.bicep"


@cache
def _parse(path: Path) -> dict[str, Any]:
    return dict(BicepParser().parse(file_path=path))


def accessor_path(value: Any) -> list[str]:
    """``identity.properties.clientId`` as ``["identity", "properties", "clientId"]``; [] if not one."""
    if isinstance(value, str):
        return [value]
    operator = value.get("operator", {}) if isinstance(value, dict) else {}
    if operator.get("type") != "property_accessor":
        return []
    operands = operator["operands"]
    head = accessor_path(operands["operand_1"])
    return [*head, *accessor_path(operands["operand_2"])] if head else []


def resource_config(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's body; a conditional resource (``= if (…) {…}``) nests it one level down."""
    config: dict[str, Any] = resource["config"]
    return config["config"] if "condition" in config else config


@dataclass
class Template:
    path: Path
    caller: Template | None = None
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def parsed(self) -> dict[str, Any]:
        return _parse(self.path)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.parsed.get("parameters", {}))

    @property
    def variables(self) -> dict[str, Any]:
        return dict(self.parsed.get("variables", {}))

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.parsed.get("resources", {}))

    @property
    def modules(self) -> dict[str, Any]:
        return dict(self.parsed.get("modules", {}))

    @property
    def outputs(self) -> dict[str, Any]:
        return dict(self.parsed.get("outputs", {}))

    def module(self, symbol: str) -> Template:
        call = self.modules[symbol]
        return Template(
            self.path.parent / call["detail"]["path"], caller=self, args=dict(call["config"]["params"])
        )

    def resources_of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        """The body of every resource of this type declared here (not ``existing``), by symbolic name."""
        return {
            name: resource_config(r)
            for name, r in self.resources.items()
            if r["type"] == type_ and not r.get("existing")
        }

    def only(self, type_: str) -> dict[str, Any]:
        found = self.resources_of_type(type_)
        assert len(found) == 1, f"expected one {type_} in {self.path.name}, found {sorted(found)}"
        return next(iter(found.values()))

    def trace(self, value: Any) -> tuple[Template, Any]:
        """Where ``value`` is made: the template and the value there (see the module docstring)."""
        template: Template = self
        seen: set[tuple[Path, str]] = set()
        while True:
            if isinstance(value, str):
                key = (template.path, value)
                if key in seen:
                    return template, value
                seen.add(key)
                if value in template.params:
                    if value in template.args:
                        assert template.caller is not None
                        template, value = template.caller, template.args[value]
                        continue
                    default = template.params[value].get("default")
                    if default is None:
                        return template, value
                    value = default
                    continue
                if value in template.variables:
                    value = template.variables[value]["value"]
                    continue
                return template, value
            path = accessor_path(value)
            if len(path) == 3 and path[0] in template.modules and path[1] == "outputs":
                child = template.module(path[0])
                template, value = child, child.outputs[path[2]]["value"]
                continue
            if len(path) == 2 and path[1] == "name" and path[0] in template.resources:
                value = resource_config(template.resources[path[0]])["name"]
                continue
            return template, value

    def resolve(self, value: Any) -> Any:
        return self.trace(value)[1]


def main() -> Template:
    return Template(MAIN)


def modules() -> dict[str, Template]:
    """main.bicep's module calls by symbolic name, each with main's arguments bound."""
    root = main()
    return {symbol: root.module(symbol) for symbol in root.modules}


# --- a small evaluator for main.bicep's checks --------------------------------------------------------


class BicepRefusal(Exception):
    """The deployment would stop here: an object was indexed with a key it lacks (the key is the message)."""


_INTERPOLATION = re.compile(r"\$\{([A-Za-z_]\w*)\}")


def evaluate(template: Template, value: Any, parameters: dict[str, Any]) -> Any:
    """Evaluate an expression of ``template`` with these parameter values (others take their default).

    Knows the functions and operators main.bicep's checks use; anything else is an AssertionError. Like
    ARM's ``if()``, a conditional evaluates only the branch it takes.
    """

    def ev(item: Any) -> Any:
        return evaluate(template, item, parameters)

    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, list):
        return [ev(item) for item in value]
    if isinstance(value, str):
        if value in template.params:
            return parameters[value] if value in parameters else template.params[value].get("default")
        if value in template.variables:
            return ev(template.variables[value]["value"])
        return _INTERPOLATION.sub(lambda m: str(ev(m.group(1))), value).replace("\\'", "'")
    if "operator" in value:
        kind, operands = value["operator"]["type"], value["operator"]["operands"]
        if kind == "conditional":
            return ev(operands["true_value"]) if ev(operands["condition"]) else ev(operands["false_value"])
        if kind == "and":
            return bool(ev(operands["operand_1"])) and bool(ev(operands["operand_2"]))
        if kind == "not":
            return not ev(operands["bool_value"])
        if kind == "equals":
            return ev(operands["operand_1"]) == ev(operands["operand_2"])
        if kind == "index_accessor":
            container, key = ev(operands["operand_1"]), ev(operands["operand_2"])
            if isinstance(container, dict) and key not in container:
                raise BicepRefusal(key)
            return container[key]
        raise AssertionError(f"operator {kind} is not known to this evaluator")
    if "function" in value:
        kind, args = value["function"]["type"], value["function"]["parameters"]
        if kind == "split":
            text, delimiters = ev(args["input_string"]), ev(args["delimiter"])
            delimiters = [delimiters] if isinstance(delimiters, str) else delimiters
            return re.split("|".join(re.escape(d) for d in delimiters), text)
        simple = {
            "join": lambda a: ev(a["delimiter"]).join(ev(a["input_array"])),
            "contains": lambda a: ev(a["item_to_find"]) in ev(a["container"]),
            "empty": lambda a: len(ev(a["item_to_test"])) == 0,
            "first": lambda a: ev(a["arg_1"])[0],
            "ends_with": lambda a: ev(a["string_to_search"]).endswith(ev(a["string_to_find"])),
        }
        assert kind in simple, f"function {kind} is not known to this evaluator"
        return simple[kind](args)
    return {key: ev(item) for key, item in value.items()}  # an object literal
