"""Azure OpenAI management-plane adapters: model deployments (``azure-mgmt-cognitiveservices``)."""
