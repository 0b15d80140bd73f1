# The reference MCP analytics agent (autonomous-agent / approval-agent) as a container image.
#   docker build -t lightning-agent:0.1.0 .
#   docker run --rm -p 8080:8080 -e AZURE_OPENAI_ENDPOINT=... lightning-agent:0.1.0
# Serves POST /message (MCP JSON-RPC) and GET /healthz, /readyz on 8080 as a non-root user (uid 10001).
# Set AGENT_API_KEY (-e AGENT_API_KEY=...) so POST /message needs the key: the command listens on 0.0.0.0.
# The agent id and model come from args/env (see infra/k8s/); nothing is baked in.

FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY pyproject.toml README.md ./
COPY lightning ./lightning
# Wheels for the package and its [agent] extra, built once and copied into the runtime stage.
RUN pip wheel --wheel-dir /wheels ".[agent]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    LIGHTNING_HOME=/var/lib/lightning
RUN groupadd --system --gid 10001 agent \
    && useradd --system --uid 10001 --gid agent --home-dir /home/agent --create-home agent \
    && mkdir -p /var/lib/lightning \
    && chown agent:agent /var/lib/lightning
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels "lightning-loop[agent]" && rm -rf /wheels
USER 10001:10001
WORKDIR /home/agent
EXPOSE 8080
ENTRYPOINT ["lightning-loop"]
CMD ["serve-agent", "--agent-id", "autonomous-agent", "--host", "0.0.0.0", "--port", "8080", \
     "--no-follow-registry", "--no-start-model-server"]
# Liveness for `docker run` (Kubernetes uses the probes in infra/k8s/ instead). The slim image has no
# curl: Python's standard library asks /healthz, which needs no API key. Assumes the default port 8080.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=3)"]
