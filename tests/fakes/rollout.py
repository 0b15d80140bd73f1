"""Test doubles of the ``AgentRollout`` and ``ModelDeployer`` ports.

``RecordingRollout`` keeps each deployment's env in a dict and records every roll_out call;
``fail_next`` makes the next roll_out fail the way the Kubernetes adapter reports a rollout
that never became available (previous env restored, ``rolled_back=True``). With ``restore_fails``
as well, the new env stays in place (the previous one could not be put back: diverged, and
``observed_env`` says so); with ``lose_sight`` the env stays in place and ``observed_env`` is None
(the API stopped answering). ``refuse`` raises before anything changes, like a 403.
It passes the AgentRollout contract (``tests/integration/contracts/test_rollout_contract.py``).
``RecordingDeployer`` records deployments and can be told to refuse one.
"""

from __future__ import annotations

from lightning.domain.errors import ProviderError
from lightning.ports.rollout import RolloutResult


class RecordingRollout:
    def __init__(self, env: dict[str, dict[str, str | None]] | None = None) -> None:
        self.env: dict[str, dict[str, str | None]] = env or {}
        self.calls: list[tuple[str, str, dict[str, str | None]]] = []
        self.fail_next: str | None = None
        self.restore_fails = False  # with fail_next: the previous env cannot be put back (diverged)
        self.lose_sight = False  # with fail_next: ... and the env cannot be read either (observed None)
        self.refuse: str | None = None

    def current_env(self, *, namespace: str, deployment: str) -> dict[str, str | None]:
        env = self.env.get(f"{namespace}/{deployment}", {})
        return {name: env.get(name) for name in ("USE_TUNED_MODEL", "TUNED_MODEL_NAME")}

    def roll_out(self, *, namespace: str, deployment: str, env: dict[str, str | None]) -> RolloutResult:
        if self.refuse:
            raise ProviderError(self.refuse, provider="kubernetes", status_code=403)
        key = f"{namespace}/{deployment}"
        self.calls.append((namespace, deployment, dict(env)))
        current = self.env.setdefault(key, {})
        previous = {name: current.get(name) for name in env}
        for name, value in env.items():
            if value is None:
                current.pop(name, None)
            else:
                current[name] = value
        observed = {name: current.get(name) for name in env}
        if self.fail_next:
            message, self.fail_next = self.fail_next, None
            if self.restore_fails or self.lose_sight:
                return RolloutResult(
                    ok=False,
                    message=f"{message}; restoring the previous env FAILED",
                    previous_env=previous,
                    observed_env=None if self.lose_sight else observed,
                )
            for name, value in previous.items():
                if value is None:
                    current.pop(name, None)
                else:
                    current[name] = value
            return RolloutResult(
                ok=False, message=message, previous_env=previous, rolled_back=True, observed_env=previous
            )
        return RolloutResult(
            ok=True, message=f"deployment {key} rolled out", previous_env=previous, observed_env=observed
        )


class RecordingDeployer:
    """Deploys by name: ``served_as_is`` returns the model name (local server), else the deployment name."""

    def __init__(self, *, served_as_is: bool = False) -> None:
        self.served_as_is = served_as_is
        self.deployed: list[tuple[str, str]] = []
        self.refuse: str | None = None

    def deploy(self, *, model_name: str, deployment_name: str) -> str:
        if self.refuse:
            raise ProviderError(self.refuse, provider="azure-openai")
        self.deployed.append((model_name, deployment_name))
        return model_name if self.served_as_is else deployment_name

    def delete(self, deployment_name: str) -> None:
        self.deployed = [(m, d) for m, d in self.deployed if d != deployment_name]
