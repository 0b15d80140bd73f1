"""``main.parameters.json`` (azd's substitution), ``azure.yaml`` and the post-provision hook, against
``main.bicep``: the three must agree on names, or `azd up` fails after minutes of provisioning."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.infra.bicep import BICEP, ROOT, evaluate, main, modules

PARAMETERS = BICEP / "main.parameters.json"
HOOK = ROOT / "infra" / "hooks" / "postprovision.py"
# ${NAME} or ${NAME=default}: azd's substitution from the environment (envsubst syntax).
SUBSTITUTION = re.compile(r"^\$\{(?P<name>[A-Z][A-Z0-9_]*)(?:=(?P<default>[^}]*))?\}$")


def parameter_values() -> dict[str, Any]:
    document = json.loads(PARAMETERS.read_text())
    assert document["$schema"].endswith("deploymentParameters.json#")
    return {name: entry["value"] for name, entry in document["parameters"].items()}


def substitute(value: Any, env: dict[str, str]) -> Any:
    match = SUBSTITUTION.match(value) if isinstance(value, str) else None
    if match is None:
        return value
    return env.get(match["name"], match["default"] or "")


def decorators(name: str) -> dict[str, Any]:
    return {d["type"]: d["argument"] for d in main().params[name]["decorators"]}


def hook() -> Any:
    sys.path.insert(0, str(HOOK.parent))
    try:
        import postprovision

        return postprovision
    finally:
        sys.path.remove(str(HOOK.parent))


# --- main.parameters.json ---------------------------------------------------------------------------


def test_every_parameter_in_the_file_is_declared_and_every_required_one_is_given() -> None:
    params = main().params
    given = parameter_values()
    assert set(given) - set(params) == set()
    assert {name for name, p in params.items() if p["default"] is None} <= set(given)


def test_every_value_comes_from_the_azd_environment_and_is_a_string_parameter() -> None:
    for name, value in parameter_values().items():
        assert SUBSTITUTION.match(value), f"{name}: {value!r} is not ${{NAME}} or ${{NAME=default}}"
        # azd substitutes text: a number or bool parameter would arrive as a string.
        assert main().params[name]["type"] == "string", name


def test_azd_fills_the_environment_name_location_and_principal() -> None:
    names = {name: SUBSTITUTION.match(value)["name"] for name, value in parameter_values().items()}  # type: ignore[index]
    assert names["environmentName"] == "AZURE_ENV_NAME"
    assert names["location"] == "AZURE_LOCATION"
    assert names["principalId"] == "AZURE_PRINCIPAL_ID"


def test_the_defaults_satisfy_main_bicep() -> None:
    env = {"AZURE_ENV_NAME": "dev", "AZURE_LOCATION": "westeurope", "AZURE_PRINCIPAL_ID": "0000"}
    values = {name: substitute(value, env) for name, value in parameter_values().items()}
    for name, value in values.items():
        rules = decorators(name)
        if "allowed" in rules:
            assert value in rules["allowed"], (name, value)
        if "min_length" in rules:
            assert len(value) >= rules["min_length"], (name, value)
        if "max_length" in rules:
            assert len(value) <= rules["max_length"], (name, value)
    assert values["publicNetworkAccess"] == "Enabled"
    assert values["k8sApiServer"] == values["k8sCaCertData"] == ""  # no cluster: rollout off
    root = main()
    assert evaluate(root, root.variables["checkedBaseName"]["value"], values) == "lightning"
    assert evaluate(root, root.variables["checkedPublicNetworkAccess"]["value"], values) == "Enabled"


# --- azure.yaml ---------------------------------------------------------------------------------------


def test_azure_yaml_deploys_the_function_app_from_this_folder_with_the_bicep() -> None:
    project = yaml.safe_load((ROOT / "azure.yaml").read_text())
    assert project["infra"] == {"provider": "bicep", "path": "infra/bicep", "module": "main"}
    assert (ROOT / project["infra"]["path"] / f"{project['infra']['module']}.bicep").exists()
    (name, service), *others = project["services"].items()
    assert others == []
    assert service == {"project": ".", "language": "python", "host": "function"}
    # azd finds the app by its azd-service-name tag.
    assert modules()["functions"].resolve("serviceName") == name
    for platform in ("posix", "windows"):
        run = project["hooks"]["postprovision"][platform]["run"]
        assert run.split()[-1] == HOOK.relative_to(ROOT).as_posix()


# --- the post-provision hook ----------------------------------------------------------------------------


def test_the_hook_reads_only_outputs_main_bicep_declares() -> None:
    outputs = set(main().outputs)
    azd_sets = {"AZURE_SUBSCRIPTION_ID"}  # azd's own, not a template output
    assert set(hook().AZD_OUTPUTS) - azd_sets <= outputs


def test_the_hook_fills_in_every_value_it_knows() -> None:
    env = {name: f"value-of-{name.lower()}" for name in hook().AZD_OUTPUTS}
    text = hook().steps(env)
    placeholders = set(re.findall(r"<([A-Z][A-Z0-9_]*)>", text))
    assert placeholders <= set(hook().USER_SETTINGS)
    for name in ("FUNCTION_IDENTITY_PRINCIPAL_ID", "AGENT_IDENTITY_NAME", "AGENT_IDENTITY_CLIENT_ID"):
        assert env[name] in text
    assert "Azure Kubernetes Service RBAC Writer" in text  # the AKS role binding
    assert "az cognitiveservices account deployment create" in text  # the judge deployment
    assert "system:serviceaccount:value-of-k8s_namespace:lightning-agent" in text


def test_with_a_cluster_and_a_judge_the_hook_skips_those_steps() -> None:
    env = dict.fromkeys(hook().AZD_OUTPUTS, "x")
    text = hook().steps(
        {
            **env,
            "K8S_API_SERVER": "https://aks.example:443",
            "AZURE_OPENAI_JUDGE_DEPLOYMENT": "judge",
            "AKS_NAME": "aks1",
            "AKS_RESOURCE_GROUP": "rg-aks",
            "ACR_NAME": "acr1",
        }
    )
    assert "rolls out to https://aks.example:443" in text
    assert "deployment create" not in text
    assert re.findall(r"<([A-Z][A-Z0-9_]*)>", text) == []


def test_azd_can_run_the_hook(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(HOOK)],
        env={"AZURE_RESOURCE_GROUP": "rg-dev", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "rg-dev" in done.stdout
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("output", "parameter"),
    [("AZURE_OPENAI_DEPLOYMENT", "openAiDeploymentName"), ("K8S_NAMESPACE", "k8sNamespace")],
)
def test_outputs_that_are_also_inputs_round_trip(output: str, parameter: str) -> None:
    # azd writes outputs into the environment, where main.parameters.json reads them on the next run:
    # the output must be the value the input gave, or every `azd provision` would change it.
    match = SUBSTITUTION.match(parameter_values()[parameter])
    assert match is not None
    assert match["name"] == output
    assert main().resolve(main().outputs[output]["value"]) == match["default"]
