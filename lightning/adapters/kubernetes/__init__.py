"""Kubernetes adapters: the agent rollout through the apps/v1 Deployments API."""
