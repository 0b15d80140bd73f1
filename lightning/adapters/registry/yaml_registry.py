"""YamlAgentRegistry: agent definitions from ``lightning/agents/*.yaml`` (+ ``LIGHTNING_AGENTS_DIR``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from lightning.domain.agent import AgentDefinition
from lightning.domain.errors import ConfigurationError, NotFound


def _load(text: str, origin: str) -> AgentDefinition:
    try:
        return AgentDefinition.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        first = str(exc).splitlines()[0:3]
        raise ConfigurationError(f"agent definition {origin} is invalid: {' '.join(first)}") from None


def bundled_texts() -> list[tuple[str, str]]:
    folder = resources.files("lightning") / "agents"
    return sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    )


class YamlAgentRegistry:
    """The registered agents: bundled ones, overridden or extended by files in ``extra_dir``."""

    def __init__(self, *, extra_dir: Path | None = None) -> None:
        agents: dict[str, AgentDefinition] = {}
        for name, text in bundled_texts():
            agent = _load(text, name)
            agents[agent.id] = agent
        if extra_dir is not None:
            for path in sorted(Path(extra_dir).glob("*.yaml")):
                agent = _load(path.read_text(encoding="utf-8"), str(path))
                agents[agent.id] = agent
        self._agents = agents

    def get(self, agent_id: str) -> AgentDefinition:
        try:
            return self._agents[agent_id]
        except KeyError:
            known = ", ".join(sorted(self._agents)) or "none"
            raise NotFound("agent", agent_id, hint=f"registered agents: {known}") from None

    def list(self) -> list[AgentDefinition]:
        return [self._agents[key] for key in sorted(self._agents)]
