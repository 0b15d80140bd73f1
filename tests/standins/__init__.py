"""Local HTTP stand-ins for APIs that have no local server (Kubernetes apps/v1, Azure Resource Manager)."""
