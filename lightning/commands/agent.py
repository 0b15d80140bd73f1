"""``serve-agent`` (run the reference MCP analytics agent) and ``simulate-traffic`` (drive it)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from lightning.commands._common import print_block, print_json, progress
from lightning.config import get_settings
from lightning.domain.errors import InvalidInput


def register(app: typer.Typer) -> None:
    @app.command("serve-agent")
    def serve_agent(
        agent_id: str = typer.Option("autonomous-agent", "--agent-id", help="Registered agent to serve."),
        host: str | None = typer.Option(
            None,
            "--host",
            help="Interface to listen on (0.0.0.0 in a container). Default: loopback (127.0.0.1).",
        ),
        port: int = typer.Option(8080, "--port", help="Port to listen on."),
        follow_registry: bool = typer.Option(
            True,
            "--follow-registry/--no-follow-registry",
            help="Use the model registry's active version (re-checked every ~2 s) unless USE_TUNED_MODEL is set.",
        ),
        start_model_server: bool = typer.Option(
            True,
            "--start-model-server/--no-start-model-server",
            help="With LIGHTNING_TRAINER=local, start the local model server if none answers.",
        ),
    ) -> None:
        """Serve the analytics agent at POST /message (MCP JSON-RPC) with /healthz; Ctrl+C stops it.

        With AGENT_API_KEY (or AGENT_API_KEYS) set, POST /message needs the key (api-key header or
        Authorization: Bearer). Without one it is open, so it listens on loopback unless --host says otherwise.
        """
        if not 0 < port < 65536:
            raise InvalidInput(f"--port must be between 1 and 65535, got {port}", field="port")
        from lightning.agent.auth import listen_address
        from lightning.bootstrap_agent import agent_api_keys, serve_agent

        settings = get_settings()
        bind, access = listen_address(host, keyed=bool(agent_api_keys(settings)))

        def announce(url: str, agent: object) -> None:
            from lightning.agent.core import AnalyticsAgent

            assert isinstance(agent, AnalyticsAgent)
            model, source = agent.models.resolve()
            capture = "on" if agent.capture.enabled else "off (ENABLE_EPISODE_CAPTURE=true turns it on)"
            sys.stderr.write(
                f"Agent {agent.agent_id} on {url}/message (model: {model} [{source}], capture: {capture}); "
                f"Ctrl+C stops it\n{access}\n"
            )

        serve_agent(
            settings,
            agent_id=agent_id,
            host=bind,
            port=port,
            follow_registry=follow_registry,
            start_model_server=start_model_server,
            on_listening=announce,
        )

    @app.command("simulate-traffic")
    def simulate_traffic(
        agent_url: str = typer.Option(
            "http://127.0.0.1:8080", "--agent-url", help="The agent (…/message is added)."
        ),
        queries: Path | None = typer.Option(
            None, "--queries", help="File of queries: one per line, a JSON list, or JSONL with a query field."
        ),
        generate: int | None = typer.Option(
            None, "--generate", help="Send N generated realistic queries (default: the workshop's five)."
        ),
        seed: int = typer.Option(0, "--seed", help="Seed of the generated queries."),
        agent_id: str = typer.Option(
            "autonomous-agent", "--agent-id", help="Agent whose queries to generate."
        ),
        concurrency: int = typer.Option(4, "--concurrency", help="Requests in flight at once."),
        delay: float = typer.Option(0.0, "--delay", help="Seconds each worker waits between requests."),
        user: str | None = typer.Option(
            None, "--user", help="Recorded as state.context.user of each episode."
        ),
        timeout: float = typer.Option(60.0, "--timeout", help="Seconds to wait for each answer."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
        show: bool = typer.Option(
            False, "--show", help="Print each query and answer, as the workshop's loop does."
        ),
    ) -> None:
        """Send the workshop's JSON-RPC requests to an agent and summarize the answers.

        With AGENT_API_KEY (or AGENT_API_KEYS) set, the first key is sent in the api-key header.
        """
        from lightning.agent.traffic import choose_requests, simulate
        from lightning.bootstrap_agent import agent_api_keys

        if delay < 0 or timeout <= 0:
            raise InvalidInput("--delay must be >= 0 and --timeout > 0", field="delay")
        requests = choose_requests(queries_file=queries, generate=generate, seed=seed, agent_id=agent_id)
        with progress() as bar:
            task = bar.add_task("Sending", total=len(requests))
            summary, results = simulate(
                agent_url,
                requests,
                concurrency=concurrency,
                timeout=timeout,
                delay=delay,
                context={"user": user} if user else None,
                on_result=lambda _: bar.advance(task),
                api_key=next(iter(agent_api_keys(get_settings())), None),
            )
        if show:
            for result in results:
                answer = result.error if result.outcome != "ok" else result.response
                sys.stdout.write(
                    f"Query: {result.query}\n"
                    f"Response: {result.tool} {json.dumps(result.arguments or {})} [{result.model_version}] {answer}\n---\n"
                )
        if as_json:
            print_json(summary)
            return

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:,.1f} ms"

        print_block(
            [
                ("Agent", agent_url),
                ("Sent", summary.sent),
                ("OK", summary.ok),
                ("Tool Errors", summary.tool_errors),
                ("Failed", summary.failed),
                ("Requests/s", f"{summary.requests_per_second:,.1f}"),
                ("Latency p50", ms(summary.latency_p50_ms)),
                ("Latency p95", ms(summary.latency_p95_ms)),
                ("Tools", json.dumps(summary.tools)),
                ("Model Versions", json.dumps(summary.model_versions)),
                ("Tool Accuracy", "-" if summary.tool_accuracy is None else f"{summary.tool_accuracy:.1%}"),
            ]
        )
        for line in summary.first_errors:
            sys.stderr.write(f"! {line}\n")
        if summary.sent and summary.failed == summary.sent:
            raise typer.Exit(1)
