"""Episode capture for any agent (``ENABLE_EPISODE_CAPTURE=true``): batched, redacted, spooled on outage.

The public API an agent uses::

    from lightning.bootstrap_agent import episode_capture

    capture = episode_capture(settings)                      # disabled unless ENABLE_EPISODE_CAPTURE=true
    with capture.tool_call(agent_id="autonomous-agent", query=query, model_version=model) as call:
        call.action("analyze_churn", {"period": "Q4 2025"})
        call.result = run_the_tool(...)                      # an exception here is captured as ``error``
        call.response = "Churn for Q4 2025: 4.9% ..."
    ...
    capture.close()                                          # also runs at interpreter exit

Each ``tool_call`` becomes one episode in the workshop's shape (``id, agent_id,
timestamp, state{query, context}, action{tool, arguments}, result, reward,
labeled`` + ``model_version, latency_ms, error, response``). Episodes are
redacted and truncated on the caller's thread (``lightning.services.capture``,
with the domain's redaction), then written in batches by a background thread:
the request path never waits on the store, a store outage spools to
``$LIGHTNING_HOME/spool/`` and is replayed later, and stable ids make replays
duplicate-free. Nothing happens at import.

Modules: ``episode_capture`` (``EpisodeCapture``), ``tool_call`` (``ToolCall``),
``writer`` (the background ``EpisodeWriter``), ``spool`` (its files on disk),
``policy`` (``CapturePolicy``). Settings never reach this package: ``lightning.bootstrap_agent`` reads them
(``episode_capture``, ``capture_policy``) and hands over a store, a spool folder and a policy
(``EpisodeCapture.start``).
"""

from __future__ import annotations

from lightning.capture.episode_capture import EpisodeCapture
from lightning.capture.policy import CapturePolicy
from lightning.capture.tool_call import ToolCall, new_episode_id
from lightning.capture.writer import CaptureStats, EpisodeSink, EpisodeWriter
from lightning.services.capture import prepare_episode

__all__ = [
    "CapturePolicy",
    "CaptureStats",
    "EpisodeCapture",
    "EpisodeSink",
    "EpisodeWriter",
    "ToolCall",
    "new_episode_id",
    "prepare_episode",
]
