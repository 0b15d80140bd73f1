"""AgentRollout: point a running agent at a model (Kubernetes Deployment env + restart).

Implemented by ``lightning.adapters.kubernetes.rollout`` (``KubernetesRollout``; ``LocalRollout`` when no
cluster is configured) and by ``tests.fakes.rollout.RecordingRollout``; called by the promotion service.
Every implementation passes ``tests/integration/contracts/test_rollout_contract.py``.

What a caller can rely on, whatever goes wrong:

* ``roll_out`` **raises** (a ``LightningError``) only when it changed nothing: the Deployment could not be
  read, or the API refused the patch outright (403, 404, conflicts that never stopped). The Deployment is
  then as it was.
* Otherwise it **returns** a ``RolloutResult`` saying where the Deployment ended up:

  ==========  ===============  ====================================================================
  ``ok``      ``rolled_back``  the Deployment afterwards
  ==========  ===============  ====================================================================
  True        False            runs ``env``; every replica updated and available
  False       True             the attempt failed after the patch; the previous env is back
  False       False            **diverged**: the previous env could not be put back (or not
                               confirmed). ``observed_env`` is what the Deployment has, ``None``
                               when nobody could read it: treat it as unknown, not as unchanged
  ==========  ===============  ====================================================================

  ``observed_env`` is the model env as last *read back from the cluster* by this call (a read or the
  answer to a patch) — never what the call merely asked for. After a write whose answer was lost it is
  ``None`` unless a later read settled it. (``LocalRollout`` has no cluster: the local agent follows the
  registry itself, so its ``observed_env`` is the env asked for and ``applied`` is False: nothing was
  patched.) The promotion service compares it with the env the registry's
  active version implies and marks the version ``diverged`` when they differ or it is ``None``.
* It returns within the adapter's time budget (``ROLLOUT_TIMEOUT_SECONDS`` for Kubernetes: waiting for
  the new pods *and* restoring the previous env both fit in it), plus at most one request's timeout.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field, computed_field


class RolloutResult(BaseModel):
    """What one ``roll_out`` did, and what the Deployment's model env is afterwards."""

    ok: bool = Field(
        description="The Deployment runs the new env and every replica is updated and available."
    )
    message: str = Field(description="What happened, in words an operator can act on.")
    previous_env: dict[str, str | None] = Field(
        default_factory=dict,
        description="The env before the call, for the same names as the env asked for (None: unset).",
    )
    rolled_back: bool = Field(
        default=False,
        description="The attempt failed after the patch and the previous env is back (observed_env says so).",
    )
    observed_env: dict[str, str | None] | None = Field(
        default=None,
        description="The Deployment's env for the same names, as last read back by this call; None when "
        "it could not be read after the last change (unknown: the cluster may run either model).",
    )
    applied: bool = Field(
        default=True,
        description="False when there was nothing to patch (``LocalRollout``: no cluster configured; the "
        "local agent follows the registry), so no Deployment changed; ``ok`` says the agent serves the env.",
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def diverged(self) -> bool:
        """Failed, and the cluster is not (or not known to be) back where it was before the call."""
        return not self.ok and not self.rolled_back


class AgentRollout(Protocol):
    def current_env(self, *, namespace: str, deployment: str) -> dict[str, str | None]:
        """USE_TUNED_MODEL and TUNED_MODEL_NAME as the agent has them now (None when unset)."""
        ...

    def roll_out(self, *, namespace: str, deployment: str, env: dict[str, str | None]) -> RolloutResult:
        """Set env (None removes a name), restart, wait; on any failure after the patch restore the previous
        env. Raises only when nothing was changed; see the module docstring for the result's guarantees."""
        ...
