"""The service layer's signature rule (issue 18): no public service function takes more than 8 parameters,
and anything past the first two is keyword-only — so that same-typed arguments cannot be swapped silently.

One shape is allowed a third positional parameter: the use case ``(command_or_message, ports, policy)``
(cosmicpython's handler shape, which the port bundles exist for); its three parameters have distinct
types, so mypy catches a swap. The rule reads every module of ``lightning.services``, so a new function
is held to it without anyone listing it here.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any

import lightning.services

MAX_PARAMETERS = 8
POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def public_functions() -> Iterator[tuple[str, Callable[..., Any]]]:
    for info in pkgutil.iter_modules(lightning.services.__path__):
        module = importlib.import_module(f"lightning.services.{info.name}")
        for name, value in vars(module).items():
            if not name.startswith("_") and inspect.isfunction(value) and value.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", value


def positional_names(function: Callable[..., Any]) -> list[str]:
    return [p.name for p in inspect.signature(function).parameters.values() if p.kind in POSITIONAL]


def test_the_rule_sees_the_use_cases() -> None:
    names = dict(public_functions())
    assert "lightning.services.promotion.promote_model" in names
    assert "lightning.services.datasets.build_dataset" in names
    assert len(names) > 50


def test_no_public_service_function_takes_more_than_eight_parameters() -> None:
    too_many = {
        name: len(inspect.signature(function).parameters)
        for name, function in public_functions()
        if len(inspect.signature(function).parameters) > MAX_PARAMETERS
    }
    assert too_many == {}


def test_past_the_first_two_parameters_everything_is_keyword_only_but_a_use_cases_policy() -> None:
    offending = {
        name: positional
        for name, function in public_functions()
        if len(positional := positional_names(function)) > 2
        and not (len(positional) == 3 and positional[2] == "policy")
    }
    assert offending == {}


def test_the_use_case_shape_is_command_ports_policy() -> None:
    shapes = {
        name: positional
        for name, function in public_functions()
        if len(positional := positional_names(function)) == 3
    }
    assert shapes, "the use cases take (command_or_message, ports, policy)"
    assert all(positional[1] == "ports" for positional in shapes.values()), shapes
