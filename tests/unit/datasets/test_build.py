"""build_dataset with fakes: format, hygiene, redaction, splits, naming, atomicity, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lightning.domain.errors import Conflict, InvalidInput, NotFound
from lightning.domain.finetune_format import example_tokens, validate_chat_example
from lightning.services.datasets import BuildRequest, info_block, summary
from tests.fakes.datasets import labeled_episode
from tests.unit.datasets.conftest import Ports
from tests.unit.datasets.openai_checker import check_chat_lines


def good(n: int, start: int = 0, **kw: Any) -> list[Any]:
    return [labeled_episode(i, reward=0.7 + (i % 4) * 0.1, **kw) for i in range(start, start + n)]


def test_jsonl_passes_our_validator_and_an_independent_openai_check(ports: Ports, count: Any) -> None:
    ports.add(good(120))
    manifest = ports.build(validation_split=0.2).manifest

    assert {f.split for f in manifest.files} == {"train", "validation"}
    total_tokens = 0
    for file in manifest.files:
        lines = ports.lines(file.uri)
        assert len(lines) == file.examples >= 10
        assert check_chat_lines(lines) == {}
        for line in lines:
            example = json.loads(line)
            assert validate_chat_example(example) == []
            total_tokens += example_tokens(example["messages"], example["tools"], count)
        assert sum(len(line) for line in lines) == file.bytes
    assert manifest.token_count == total_tokens  # the fast path bills exactly the documented recipe


def test_example_shape_keeps_native_tool_calls_and_the_agent_definition(ports: Ports) -> None:
    ports.add(good(12))
    manifest = ports.build(validation_split=0).manifest
    agent = ports.agents.get("autonomous-agent")
    example = json.loads(ports.lines(manifest.files[0].uri)[0])

    system, user, call, tool, final = example["messages"]
    assert system == {"role": "system", "content": agent.system_prompt}
    assert user["role"] == "user"
    assert call["role"] == "assistant"
    assert "content" not in call
    (tool_call,) = call["tool_calls"]
    assert tool_call["type"] == "function"
    assert tool_call["id"].startswith("call_")
    assert isinstance(json.loads(tool_call["function"]["arguments"]), dict)
    assert tool == {"role": "tool", "tool_call_id": tool_call["id"], "content": tool["content"]}
    assert isinstance(tool["content"], str)
    assert final == {"role": "assistant", "content": "Here is what I found."}
    assert example["tools"] == agent.openai_tools()
    assert manifest.tools == agent.openai_tools()
    assert manifest.system_prompt == agent.system_prompt


def test_without_a_final_answer_the_example_ends_at_the_tool_call(ports: Ports) -> None:
    ports.add(good(12, response=None))
    manifest = ports.build(validation_split=0).manifest
    roles = [m["role"] for m in json.loads(ports.lines(manifest.files[0].uri)[0])["messages"]]
    assert roles == ["system", "user", "assistant"]


def test_hygiene_drops_and_reports_every_reason(ports: Ports) -> None:
    ports.add(good(20))
    ports.add([labeled_episode(100 + i, reward=None) for i in range(3)])  # unlabeled
    ports.add([labeled_episode(200 + i, reward=0.2) for i in range(4)])  # below min reward
    ports.add([labeled_episode(300 + i, error="timeout") for i in range(2)])  # errored
    ports.add([labeled_episode(400, tool="")])  # no tool call
    ports.add([labeled_episode(500, tool="delete_everything")])  # not one of the agent's tools
    dup = labeled_episode(3)
    ports.add(
        [
            dup.model_copy(
                update={
                    "id": "dup-1",
                    "state": dup.state.model_copy(
                        update={"query": "  SHOW me customer segments at low RISK (request 3)?? "}
                    ),
                }
            )
        ]
    )
    ports.add([labeled_episode(600, agent_id="approval-agent")])  # other agent: not counted at all

    manifest = ports.build(validation_split=0).manifest

    assert manifest.dropped == {
        "below_min_reward": 4,
        "duplicate": 1,
        "errored": 2,
        "no_tool_call": 1,
        "unknown_tool": 1,
        "unlabeled": 3,
    }
    assert manifest.episode_count == 20
    assert "dup-1" not in manifest.episode_ids or "ep-0000003" not in manifest.episode_ids


def test_secrets_are_redacted_from_every_message(ports: Ports) -> None:
    secret_key = "sk-proj-abcdefghijklmnopqrstuvwx1234"
    ports.add(good(10))
    ports.add(
        [
            labeled_episode(
                50,
                query="Analyze churn for Q4 2025, my email is jane.doe@contoso.com",
                arguments={"period": "Q4 2025", "api_key": "hunter2hunter2"},
                result={"note": f"used key {secret_key}", "card": "4111 1111 1111 1111"},
                response="Sent to jane.doe@contoso.com; call +1 (415) 555-0100",
            )
        ]
    )
    manifest = ports.build(validation_split=0).manifest
    text = b"".join(ports.lines(manifest.files[0].uri)).decode()

    for leaked in ("jane.doe@contoso.com", secret_key, "hunter2hunter2", "4111 1111 1111 1111", "555-0100"):
        assert leaked not in text
    assert text.count("[REDACTED]") >= 5
    assert manifest.redactions["email"] >= 2
    assert check_chat_lines(ports.lines(manifest.files[0].uri)) == {}


def test_long_tool_results_are_capped(ports: Ports) -> None:
    ports.add(good(11, result={"blob": "x" * 50_000}))
    manifest = ports.build(validation_split=0, max_tool_result_chars=1000).manifest
    tool = json.loads(ports.lines(manifest.files[0].uri)[0])["messages"][3]
    assert len(tool["content"]) < 1100
    assert "truncated" in tool["content"]
    assert manifest.truncated == 11


def test_split_is_stable_across_runs_and_store_order(ports: Ports, tmp_path: Path) -> None:
    episodes = good(300)
    ports.add(episodes)
    first = ports.build(name="first", validation_split=0.2).manifest
    second = ports.build(name="second", validation_split=0.2).manifest
    assert set(first.validation_episode_ids) == set(second.validation_episode_ids)
    assert first.content_sha256 == second.content_sha256

    shuffled = Ports(tmp_path / "w2")
    shuffled.add(list(reversed(episodes)))
    third = shuffled.build(name="third", validation_split=0.2).manifest
    assert set(third.validation_episode_ids) == set(first.validation_episode_ids)
    assert 30 <= len(first.validation_episode_ids) <= 90  # ~20 % of 300

    more = Ports(tmp_path / "w3")
    more.add(good(600))
    bigger = more.build(name="bigger", validation_split=0.2).manifest
    assert set(first.validation_episode_ids) <= set(bigger.validation_episode_ids)  # ids never change sides


def test_a_small_validation_split_is_merged_into_train_with_a_note(ports: Ports) -> None:
    ports.add(good(40))
    manifest = ports.build(validation_split=0.1).manifest
    assert [f.split for f in manifest.files] == ["train"]
    assert manifest.examples("train") == 40
    assert manifest.validation_episode_ids == []
    assert any("added to train" in note for note in manifest.notes)


def test_same_name_same_content_returns_the_existing_dataset(ports: Ports) -> None:
    ports.add(good(15))
    first = ports.build()
    again = ports.build()
    assert not first.reused
    assert again.reused
    assert again.manifest.created_at == first.manifest.created_at
    assert len(ports.blobs.blobs) == 1


def test_same_name_other_content_is_refused_unless_overwrite(ports: Ports) -> None:
    ports.add(good(15))
    first = ports.build().manifest
    ports.add(good(5, start=15))
    with pytest.raises(Conflict, match="--overwrite"):
        ports.build()
    assert ports.datasets.get("autonomous-agent-v1").content_sha256 == first.content_sha256

    replaced = ports.build(overwrite=True).manifest
    assert replaced.episode_count == 20
    assert list(ports.blobs.blobs) == [replaced.files[0].uri.removeprefix("mem://")]  # old files removed


def test_a_failure_before_commit_leaves_nothing_visible(ports: Ports) -> None:
    ports.add(good(15))

    def broken_put(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("power cut")

    ports.datasets.put = broken_put  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="power cut"):
        ports.build()
    assert ports.datasets.list() == []
    assert ports.blobs.blobs == {}
    assert list(ports.work_dir.iterdir()) == []


@pytest.mark.parametrize("value", [-0.1, 1.01, float("nan")])
def test_min_reward_outside_unit_interval_is_invalid(value: float) -> None:
    with pytest.raises(InvalidInput, match="between 0 and 1"):
        BuildRequest(agent_id="autonomous-agent", name="x", min_reward=value)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"name": "bad name!"}, "not allowed"),
        ({"name": "../up"}, "not allowed"),
        ({"validation_split": 0.9}, "validation-split"),
        ({"max_examples": 3}, "at least 10"),
    ],
)
def test_bad_requests_are_invalid(fields: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        BuildRequest(**{"agent_id": "autonomous-agent", "name": "x", **fields})


def test_unknown_agent_is_not_found(ports: Ports) -> None:
    with pytest.raises(NotFound, match="registered agents"):
        ports.build(agent_id="ghost-agent")


def test_empty_result_set_says_what_to_do(ports: Ports) -> None:
    ports.add([labeled_episode(i, reward=0.3) for i in range(5)])
    with pytest.raises(InvalidInput, match=r"no labeled episodes with reward >= 0.7.*5 episodes, 5 labeled"):
        ports.build()


def test_too_few_usable_examples_is_refused(ports: Ports) -> None:
    ports.add(good(9))
    with pytest.raises(InvalidInput, match=r"only 9 usable examples.*at least 10"):
        ports.build()
    assert ports.datasets.list() == []


def test_examples_over_the_token_limit_are_dropped(ports: Ports) -> None:
    ports.add(good(12))
    ports.add([labeled_episode(900, response="word " * 20_000)])  # ~20k tokens > gpt-35-turbo's 16,385
    manifest = ports.build(base_model="gpt-35-turbo", validation_split=0).manifest
    assert manifest.dropped["over_token_limit"] == 1
    assert manifest.filters["token_limit"] == 16_385
    assert (
        ports.build(name="roomy", base_model="gpt-4o-mini", validation_split=0).manifest.episode_count == 13
    )


def test_max_examples_keeps_the_newest(ports: Ports) -> None:
    ports.add(good(50))
    manifest = ports.build(max_examples=20, validation_split=0).manifest
    assert sorted(manifest.episode_ids) == [f"ep-{i:07d}" for i in range(30, 50)]
    assert any("max-examples" in note for note in manifest.notes)


def test_since_until_window(ports: Ports) -> None:
    ports.add(good(60))
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 2, 7, 10, 0, tzinfo=UTC)
    manifest = ports.build(
        since=t0 + timedelta(seconds=10), until=t0 + timedelta(seconds=40), validation_split=0
    ).manifest
    assert sorted(manifest.episode_ids) == [f"ep-{i:07d}" for i in range(10, 40)]
    assert manifest.filters["since"] == "2026-02-07T10:00:10Z"


def test_system_prompt_override_is_used_and_stored(ports: Ports) -> None:
    ports.add(good(12))
    manifest = ports.build(system_prompt="You answer with one tool call.", validation_split=0).manifest
    example = json.loads(ports.lines(manifest.files[0].uri)[0])
    assert example["messages"][0]["content"] == "You answer with one tool call."
    assert manifest.system_prompt == "You answer with one tool call."
    assert manifest.filters["system_prompt_source"] == "file"


def test_info_block_is_the_workshop_block_then_splits_and_tools(ports: Ports) -> None:
    ports.add(good(150))
    manifest = ports.build(validation_split=0.2).manifest
    lines = info_block(manifest)
    keys = [key for key, _ in lines]
    assert keys[:6] == ["Dataset", "Episodes", "Avg Reward", "Min Reward", "Max Reward", "Token Count"]
    values = dict(lines)
    assert values["Dataset"] == "autonomous-agent-v1"
    assert values["Episodes"] == "150"
    assert values["Min Reward"] == "0.70"
    assert values["Max Reward"] == "1.00"
    assert values["Token Count"] == f"{manifest.token_count:,}"
    assert "," in values["Token Count"]
    assert int(values["Train Examples"]) + int(values["Validation Examples"]) == 150
    assert "analyze_churn 30 (20%)" in values["Tool Distribution"]
    data = summary(manifest)
    assert "episode_ids" not in data
    assert data["episodes"] == 150


def test_the_forked_pipeline_writes_exactly_what_one_process_writes(ports: Ports) -> None:
    ports.add(good(400))
    ports.add([labeled_episode(1000, query="mail me at x@y.io")])
    alone = ports.build(name="alone", validation_split=0.2, parallel=False).manifest
    forked = ports.build(name="forked", validation_split=0.2, parallel=True).manifest
    assert forked.content_sha256 == alone.content_sha256
    assert forked.episode_ids == alone.episode_ids
    assert forked.validation_episode_ids == alone.validation_episode_ids
    assert forked.redactions == alone.redactions == {"email": 1}
    assert forked.model_dump(exclude={"name", "files", "created_at"}) == alone.model_dump(
        exclude={"name", "files", "created_at"}
    )


def test_an_error_in_the_forked_builder_reaches_the_caller(
    ports: Ports, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lightning.services import dataset_files

    monkeypatch.setattr(dataset_files, "MAX_FILE_BYTES", 20_000)
    ports.add(good(100))
    with pytest.raises(InvalidInput, match="would exceed the provider's 0 MB file limit"):
        ports.build(parallel=True)
    assert ports.datasets.list() == []
    assert list(ports.work_dir.iterdir()) == []
