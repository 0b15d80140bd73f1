"""azd post-provision hook: print the steps `azd up` cannot do, with this environment's values filled in.

azd runs it after `azd provision` (azure.yaml) with the environment's values — main.bicep's outputs
and what `azd env set` stored — as environment variables. It changes nothing: it prints. A value azd
does not know yet (your AKS cluster's name, say) stays a <placeholder>; set it with `azd env set NAME
value` and run `azd hooks run postprovision` to print the steps again. Standard library only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

AZD_OUTPUTS = (
    "AZURE_SUBSCRIPTION_ID",
    "AZURE_RESOURCE_GROUP",
    "FUNCTION_APP_NAME",
    "FUNCTION_IDENTITY_PRINCIPAL_ID",
    "AGENT_IDENTITY_NAME",
    "AGENT_IDENTITY_CLIENT_ID",
    "COSMOS_ENDPOINT",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_ACCOUNT",
    "AZURE_OPENAI_DEPLOYMENT",
    "K8S_NAMESPACE",
)
# Set by you (`azd env set`), not by the template: they name things the template does not create.
USER_SETTINGS = (
    "AKS_NAME",
    "AKS_RESOURCE_GROUP",
    "ACR_NAME",
    "K8S_API_SERVER",
    "AZURE_OPENAI_JUDGE_DEPLOYMENT",
)


def steps(env: Mapping[str, str]) -> str:
    def v(name: str) -> str:
        return env.get(name) or f"<{name}>"

    rg, ns = v("AZURE_RESOURCE_GROUP"), env.get("K8S_NAMESPACE") or "mcp-agents"
    aks_rg = env.get("AKS_RESOURCE_GROUP") or "<AKS_RESOURCE_GROUP>"
    lines = [
        "Lightning Loop is provisioned. What azd cannot do for you:",
        "",
        f"Function App {v('FUNCTION_APP_NAME')} in {rg} runs the loop (change feed -> labels -> timer ->",
        "fine-tune queue -> promotion). It needs episodes: from your agents on AKS (2-4), or first from",
        "a local agent that writes to this environment's Cosmos DB (1).",
        "",
        "1. A first loop without a cluster: a local agent against Azure (your account has the roles).",
        f"     export LIGHTNING_STORE=cosmos COSMOS_ENDPOINT={v('COSMOS_ENDPOINT')}",
        f"     export AZURE_OPENAI_ENDPOINT={v('AZURE_OPENAI_ENDPOINT')} AZURE_OPENAI_DEPLOYMENT={v('AZURE_OPENAI_DEPLOYMENT')}",
        "     export ENABLE_EPISODE_CAPTURE=true",
        "     lightning-loop serve-agent --agent-id autonomous-agent &",
        "     lightning-loop simulate-traffic --agent-url http://127.0.0.1:8080 --generate 120",
        "",
    ]
    if not env.get("AZURE_OPENAI_JUDGE_DEPLOYMENT"):
        lines += [
            "   Labels come from the rubric until a task_adherence judge is deployed (optional):",
            f"     az cognitiveservices account deployment create -g {rg} -n {v('AZURE_OPENAI_ACCOUNT')} \\",
            "       --deployment-name judge --model-name gpt-4o --model-version 2024-11-20 --model-format OpenAI \\",
            "       --sku-name GlobalStandard --sku-capacity 30",
            "     azd env set AZURE_OPENAI_JUDGE_DEPLOYMENT judge && azd provision",
            "",
        ]
    if not env.get("K8S_API_SERVER"):
        lines += [
            "2. Point the loop at your AKS cluster (rollouts are off until then):",
            "     azd env set AKS_NAME <cluster> && azd env set AKS_RESOURCE_GROUP <its resource group>",
            f"     az aks get-credentials -g {aks_rg} -n {v('AKS_NAME')} --file - > aks.kubeconfig",
            "     azd env set K8S_API_SERVER \"$(grep -m1 'server:' aks.kubeconfig | awk '{print $2}')\"",
            "     azd env set K8S_CA_CERT_DATA \"$(grep -m1 'certificate-authority-data:' aks.kubeconfig | awk '{print $2}')\"",
            "     rm aks.kubeconfig && azd provision",
            "",
        ]
    else:
        lines += [f"2. The loop rolls out to {env['K8S_API_SERVER']} (namespace {ns}).", ""]
    lines += [
        f"3. Let the Function App's identity patch the agents' Deployments in {ns} (AKS with Azure RBAC):",
        f"     az role assignment create --assignee-object-id {v('FUNCTION_IDENTITY_PRINCIPAL_ID')} \\",
        '       --assignee-principal-type ServicePrincipal --role "Azure Kubernetes Service RBAC Writer" \\',
        f'       --scope "$(az aks show -g {aks_rg} -n {v("AKS_NAME")} --query id -o tsv)/namespaces/{ns}"',
        "   (Kubernetes RBAC instead: a Role allowing get, list, watch, patch on apps/deployments in",
        f"    {ns}, bound to that object id.)",
        "",
        "4. Run the agents on AKS as the agents' identity, behind a key:",
        f"     az identity federated-credential create -g {rg} --identity-name {v('AGENT_IDENTITY_NAME')} \\",
        "       --name aks-lightning-agent --audiences api://AzureADTokenExchange \\",
        f"       --subject system:serviceaccount:{ns}:lightning-agent \\",
        f'       --issuer "$(az aks show -g {aks_rg} -n {v("AKS_NAME")} --query oidcIssuerProfile.issuerUrl -o tsv)"',
        "   In infra/k8s/config.yaml set:",
        f"     azure.workload.identity/client-id: {v('AGENT_IDENTITY_CLIENT_ID')}",
        f"     COSMOS_ENDPOINT: {v('COSMOS_ENDPOINT')}",
        f"     AZURE_OPENAI_ENDPOINT: {v('AZURE_OPENAI_ENDPOINT')}",
        f"     AZURE_OPENAI_DEPLOYMENT: {v('AZURE_OPENAI_DEPLOYMENT')}",
        "   Build the image and pin it by digest:",
        f"     az acr build -r {v('ACR_NAME')} -t lightning-agent:0.1.0 .",
        f"     digest=$(az acr repository show -n {v('ACR_NAME')} --image lightning-agent:0.1.0 --query digest -o tsv)",
        "     (cd infra/k8s && kustomize edit set image \\",
        f"       lightningloop.azurecr.io/lightning-agent={v('ACR_NAME')}.azurecr.io/lightning-agent@$digest)",
        "   Create the agents' API key (keep it: API Management sends it, see docs/agent-access.md):",
        f"     kubectl create namespace {ns} --dry-run=client -o yaml | kubectl apply -f -",
        f"     kubectl -n {ns} create secret generic lightning-agent-auth \\",
        '       --from-literal=AGENT_API_KEY="$(openssl rand -hex 32)"',
        "     kubectl apply -k infra/k8s",
        "",
        "azd down --purge removes everything this environment created.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(steps(os.environ))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
