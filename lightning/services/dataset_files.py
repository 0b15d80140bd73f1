"""The dataset builder's file machinery: shaping chat examples, writing, hashing, splitting.

Used by ``lightning.services.datasets`` only. ``ChatBuilder`` turns filtered episodes (as plain
tuples) into JSONL lines — redaction, tool-result cap, de-duplication, token counting, split by id
hash — and writes them to a private work folder, hashing on a background thread. For big builds
``run_chat_pipeline`` runs the builder in a forked helper process while the caller keeps reading
the episode store: reading and shaping then use both cores, and the output is byte-identical to
the in-process build (one consumer sees the items in store order).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import pickle
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from lightning.domain.dataset import Split
from lightning.domain.errors import InvalidInput
from lightning.domain.finetune_format import (
    MAX_FILE_BYTES,
    MIN_EXAMPLES_PER_FILE,
    REPLY_PRIMING,
    TOKENS_PER_MESSAGE,
    TOKENS_PER_TOOL_CALL,
    episode_keys,
    message_tokens,
    tool_call_id,
    tools_tokens,
    validate_chat_example,
)
from lightning.domain.redaction import may_contain_sensitive, redact_text, redact_value, truncate_text

STALE_WORK_SECONDS = 24 * 3600
FULLY_VALIDATED = 1000
"""The first examples of every build are re-parsed from their JSON line and validated in full."""
_CHUNK_BYTES = 1 << 20
_BATCH = 2000
_DUMPS_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode
# Tool-call arguments with sorted keys: the same call always has the same text (and de-duplicates).
_DUMPS_ARGS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, default=str).encode
_quote = json.encoder.encode_basestring  # C speed; non-ASCII kept as is

Item = tuple[str, float, str, str, str, str, bool, "str | None", bool]
"""One usable, de-duplicated episode as plain values (cheap to send to the helper process):
(id, reward, query, tool, arguments JSON text, result text, result was a string, response,
may hold something to redact)."""


@dataclass(frozen=True)
class ChatConfig:
    """What the chat builder needs from the request (plain values: it may run in another process)."""

    name: str
    validation_split: float
    token_limit: int
    max_tool_result_chars: int
    max_examples: int | None


@dataclass(frozen=True)
class FileInfo:
    """A finished split file in the work folder."""

    split: Split
    path: Path
    ids_path: Path
    sha256: str
    examples: int
    nbytes: int
    tokens: int


class _Sink:
    """Hashes and writes chunks of one file on a background thread.

    hashlib and file writes release the GIL on large buffers, so the second core hashes and writes
    while the first shapes examples. One worker thread per build keeps every file's chunks in order.
    """

    def __init__(self, path: Path, pool: ThreadPoolExecutor) -> None:
        self.path = path
        self.sha = hashlib.sha256()
        self._handle = open(path, "wb")  # noqa: SIM115 - closed in close(), after the last chunk
        self._pool = pool
        self._pending: Future[None] | None = None

    def _write(self, chunk: bytes) -> None:
        self.sha.update(chunk)
        self._handle.write(chunk)

    def submit(self, chunk: bytes) -> None:
        if self._pending is not None:
            self._pending.result()  # re-raise a write error (disk full) here, on the caller's thread
        self._pending = self._pool.submit(self._write, chunk)

    def close(self) -> None:
        try:
            if self._pending is not None:
                self._pending.result()
                self._pending = None
        finally:
            self._handle.close()


@dataclass
class _SplitWriter:
    """One split's temporary JSONL file, hashed and counted as it is written."""

    split: Split
    path: Path
    ids_path: Path
    sink: _Sink
    ids: BinaryIO
    buffer: list[bytes] = field(default_factory=list)
    buffered: int = 0
    examples: int = 0
    nbytes: int = 0
    tokens: int = 0
    closed: bool = False

    @property
    def sha(self) -> Any:
        return self.sink.sha

    def write(self, line: bytes, episode_ids: str, tokens: int) -> None:
        self.buffer.append(line)
        size = len(line)
        self.buffered += size
        self.nbytes += size
        self.examples += 1
        self.tokens += tokens
        self.ids.write(episode_ids.encode("utf-8"))
        if self.buffered >= _CHUNK_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.sink.submit(b"".join(self.buffer))
            self.buffer.clear()
            self.buffered = 0

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.flush()
        finally:
            self.sink.close()
            self.ids.close()


@dataclass
class Tally:
    dropped: Counter[str] = field(default_factory=Counter)
    redactions: Counter[str] = field(default_factory=Counter)
    tools: Counter[str] = field(default_factory=Counter)
    truncated: int = 0
    reward_sum: float = 0.0
    reward_min: float = 1.0
    reward_max: float = 0.0
    rewarded: int = 0
    notes: list[str] = field(default_factory=list)

    def reward(self, value: float) -> None:
        self.reward_sum += value
        self.reward_min = min(self.reward_min, value)
        self.reward_max = max(self.reward_max, value)
        self.rewarded += 1


class Work:
    """A private work folder for one build; removed whatever happens (a killed build leaves it behind,
    invisible to every listing; stale ones are swept by the next build)."""

    def __init__(self, root: Path, name: str) -> None:
        try:
            root.mkdir(parents=True, exist_ok=True)
            _sweep_stale(root)
            self.dir = Path(tempfile.mkdtemp(prefix=f".build-{name}-", dir=root))
        except OSError as exc:
            raise InvalidInput(
                f"cannot write build files under {root}: {exc.strerror or exc}; make LIGHTNING_HOME writable"
            ) from None
        self.writers: dict[Split, _SplitWriter] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataset-writer")

    def writer(self, split: Split) -> _SplitWriter:
        found = self.writers.get(split)
        if found is None:
            path = self.dir / f"{split}.jsonl"
            ids_path = self.dir / f"{split}.ids"
            found = self.writers[split] = _SplitWriter(
                split,
                path,
                ids_path,
                _Sink(path, self._pool),
                open(ids_path, "wb", buffering=1 << 16),  # noqa: SIM115
            )
        return found

    def close(self) -> None:
        try:
            for writer in self.writers.values():
                writer.close()
        finally:
            self._pool.shutdown(wait=True)

    def remove(self) -> None:
        try:
            self.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _sweep_stale(root: Path) -> None:
    cutoff = time.time() - STALE_WORK_SECONDS
    for entry in root.glob(".build-*"):
        try:
            if entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry, ignore_errors=True)
        except OSError:
            continue


def sensitive(query: str, args_text: str, result: str, response: str | None) -> bool:
    """One cheap pre-check over all of an episode's text: can any redaction pattern match?"""
    return may_contain_sensitive(f"{query}\x00{args_text}\x00{result}\x00{response or ''}")


def dumps_args(arguments: Any) -> str:
    """Tool-call arguments as compact JSON with sorted keys (one text per call, whatever the key order)."""
    return _DUMPS_ARGS(arguments)


def result_text(result: Any) -> str:
    """The tool message content: strings as they are, anything else as compact JSON."""
    if result is None:
        return ""
    if isinstance(result, str):
        return result
    return _DUMPS_COMPACT(result)


class Shaper:
    """Redaction and the tool-result cap for one example's variable parts."""

    def __init__(self, max_tool_result_chars: int, tally: Tally) -> None:
        self._cap = max_tool_result_chars
        self._tally = tally

    def _note(self, kind: str) -> None:
        self._tally.redactions[kind] += 1

    def parts(
        self, query: str, arguments: dict[str, Any], result: Any, response: str | None
    ) -> tuple[str, str, str, str | None]:
        """``parts_text`` from the episode's values."""
        args_text, result_value = dumps_args(arguments), result_text(result)
        return self.parts_text(
            query,
            args_text,
            result_value,
            result is None or isinstance(result, str),
            response,
            sensitive(query, args_text, result_value, response),
        )

    def parts_text(
        self,
        query: str,
        args_text: str,
        result: str,
        result_is_text: bool,
        response: str | None,
        suspect: bool,
    ) -> tuple[str, str, str, str | None]:
        """(user query, arguments JSON text, tool result text, final response), redacted and capped.

        ``suspect`` is ``sensitive(...)`` of the same values: when False (most episodes) the patterns
        never run. JSON values are redacted value by value (so secret-named keys are caught and the
        JSON stays valid), then re-serialized.
        """
        if suspect:
            note = self._note
            query = redact_text(query, note)
            args_text = dumps_args(redact_value(json.loads(args_text), note))
            if result_is_text:
                result = redact_text(result, note)
            else:
                result = result_text(redact_value(json.loads(result), note))
            if response is not None:
                response = redact_text(response, note)
        if len(result) > self._cap:
            result = truncate_text(result, self._cap)
            self._tally.truncated += 1
        return query, args_text, result, response


def chat_messages(
    episode_id: str, query: str, tool: str, args_text: str, result_text: str, response: str | None
) -> list[dict[str, Any]]:
    """user → assistant with a native tool call → (when there is a final answer) tool result → assistant."""
    call_id = tool_call_id(episode_id)
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": query},
        {
            "role": "assistant",
            "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": tool, "arguments": args_text}}
            ],
        },
    ]
    if response:
        messages.append({"role": "tool", "tool_call_id": call_id, "content": result_text})
        messages.append({"role": "assistant", "content": response})
    return messages


class ChatLines:
    """Writes chat examples as JSON text directly (the hot path: ~1M examples a minute).

    The system message and tool schemas are the same in every line: serialized, validated and
    token-counted once. Per example only the variable strings are encoded and counted, with the same
    overheads ``finetune_format.example_tokens`` applies (a unit test holds the two equal).
    """

    def __init__(self, prompt: str, tools: list[dict[str, Any]], count: Callable[[str], int]) -> None:
        system = {"role": "system", "content": prompt}
        problems = validate_chat_example(
            {"messages": [system, {"role": "assistant", "content": "x"}], "tools": tools}
        )
        if problems:
            raise InvalidInput(f"the agent definition cannot make valid examples: {problems[0]}")
        self.head = '{"messages":[' + _DUMPS_COMPACT(system)
        self.tail = '],"tools":' + _DUMPS_COMPACT(tools) + "}\n"
        self.constant_tokens = message_tokens(system, count) + REPLY_PRIMING + tools_tokens(tools, count)
        self._count = count
        self._role = {role: count(role) for role in ("user", "assistant", "tool")}
        self._names: dict[str, int] = {}

    def line(
        self, call_id: str, query: str, tool: str, args_text: str, result_text: str, response: str | None
    ) -> tuple[str, int]:
        """The example's JSON line (with its newline) and its billed tokens."""
        count = self._count
        role = self._role
        name_tokens = self._names.get(tool)
        if name_tokens is None:
            name_tokens = self._names[tool] = count(tool)
        tokens = (
            self.constant_tokens
            + TOKENS_PER_MESSAGE + role["user"] + count(query)
            + TOKENS_PER_MESSAGE + role["assistant"] + TOKENS_PER_TOOL_CALL + name_tokens + count(args_text)
        )  # fmt: skip
        text = (
            f'{self.head},{{"role":"user","content":{_quote(query)}}},{{"role":"assistant","tool_calls":'
            f'[{{"id":"{call_id}","type":"function","function":{{"name":{_quote(tool)},'
            f'"arguments":{_quote(args_text)}}}}}]}}'
        )
        if response:
            tokens += TOKENS_PER_MESSAGE + role["tool"] + count(result_text)
            tokens += TOKENS_PER_MESSAGE + role["assistant"] + count(response)
            text += (
                f',{{"role":"tool","tool_call_id":"{call_id}","content":{_quote(result_text)}}}'
                f',{{"role":"assistant","content":{_quote(response)}}}'
            )
        return text + self.tail, tokens


def too_large(split: str, examples: int, name: str) -> InvalidInput:
    limit_mb = MAX_FILE_BYTES // (1024 * 1024)
    suggestion = max(MIN_EXAMPLES_PER_FILE, int(examples * 0.9))
    return InvalidInput(
        f"the {split} file of {name!r} would exceed the provider's {limit_mb} MB file limit "
        f"after {examples:,} examples: pass --max-examples {suggestion:,} or narrow --since/--until",
        field="max_examples",
    )


def finish_splits(work: Work, tally: Tally, name: str) -> dict[Split, FileInfo]:
    """Close the files and apply the validation-size rule; returns the files that exist.

    A validation split under the provider's minimum of 10 examples is appended to train (and a note
    says so) rather than uploaded as a file the provider would refuse.
    """
    work.close()
    train = work.writers.get("train")
    validation = work.writers.get("validation")
    if validation is not None and validation.examples < MIN_EXAMPLES_PER_FILE:
        moved = validation.examples
        if train is None:
            train = work.writer("train")
            train.close()
        with open(train.path, "ab") as out, open(validation.path, "rb") as src:
            for line in src:
                out.write(line)
                train.sha.update(line)
        with open(train.ids_path, "ab") as out_ids:
            out_ids.write(validation.ids_path.read_bytes())
        train.examples += moved
        train.nbytes += validation.nbytes
        train.tokens += validation.tokens
        validation.path.unlink()
        del work.writers["validation"]
        tally.notes.append(
            f"validation split had {moved} example(s), fewer than the provider's minimum of "
            f"{MIN_EXAMPLES_PER_FILE}: they were added to train and no validation file was written"
        )
        if train.nbytes > MAX_FILE_BYTES:
            raise too_large("train", train.examples, name)
    return {
        split: FileInfo(split, w.path, w.ids_path, w.sha.hexdigest(), w.examples, w.nbytes, w.tokens)
        for split, w in sorted(work.writers.items())
    }


class ChatBuilder:
    """Shapes, counts, checks and writes chat examples, in the order the episodes come."""

    def __init__(
        self,
        config: ChatConfig,
        prompt: str,
        tools: list[dict[str, Any]],
        count: Callable[[str], int],
        work: Work,
    ) -> None:
        self.config = config
        self.tally = Tally()
        self.work = work
        self.lines = ChatLines(prompt, tools, count)
        self.shaper = Shaper(config.max_tool_result_chars, self.tally)
        self.kept = 0
        self.full = False

    def add(self, item: Item) -> bool:
        """Take one usable episode; False once ``max_examples`` are kept (later items are ignored)."""
        if self.full:
            return False
        episode_id, reward, query, tool, raw_args, raw_result, result_is_text, response, suspect = item
        user_query, args_text, result, final = self.shaper.parts_text(
            query, raw_args, raw_result, result_is_text, response, suspect
        )
        split, call_id = episode_keys(episode_id, self.config.validation_split)
        text, tokens = self.lines.line(call_id, user_query, tool, args_text, result, final)
        if tokens > self.config.token_limit:
            self.tally.dropped["over_token_limit"] += 1
            return True
        if self.kept < FULLY_VALIDATED:
            # Examples are valid by construction; the first ones are re-parsed and checked in full so a
            # construction bug can never reach the provider unnoticed.
            problems = validate_chat_example(json.loads(text))
            if problems:
                raise InvalidInput(f"episode {episode_id} makes an invalid example: {'; '.join(problems)}")
        writer = self.work.writer(split)
        writer.write(text.encode("utf-8", "replace"), episode_id + "\n", tokens)
        if writer.nbytes > MAX_FILE_BYTES:
            raise too_large(split, writer.examples, self.config.name)
        self.tally.reward(reward)
        self.tally.tools[tool] += 1
        self.kept += 1
        if self.config.max_examples is not None and self.kept >= self.config.max_examples:
            self.tally.notes.append(
                f"stopped at --max-examples {self.config.max_examples:,} (newest episodes kept)"
            )
            self.full = True
            return False
        return True

    def finish(self) -> tuple[dict[Split, FileInfo], Tally]:
        return finish_splits(self.work, self.tally, self.config.name), self.tally


def build_in_process(items: Iterable[Item], builder: ChatBuilder) -> tuple[dict[Split, FileInfo], Tally]:
    for item in items:
        if not builder.add(item):
            break
    return builder.finish()


def pipeline_available() -> bool:
    """The forked helper needs ``fork`` (Linux, the Functions host); elsewhere builds run in one process."""
    return "fork" in multiprocessing.get_all_start_methods()


def run_chat_pipeline(
    items: Iterable[Item], make_builder: Callable[[], ChatBuilder]
) -> tuple[dict[Split, FileInfo], Tally]:
    """Consume ``items`` here while a forked helper process shapes and writes them (same result as
    ``build_in_process``). The helper exits when this process dies: a killed build stops entirely."""
    ctx = multiprocessing.get_context("fork")
    items_r, items_w = ctx.Pipe(duplex=False)
    result_r, result_w = ctx.Pipe(duplex=False)
    process = ctx.Process(
        target=_consume,
        args=(make_builder, items_r, items_w, result_r, result_w),
        daemon=True,
        name="dataset-builder",
    )
    process.start()
    items_r.close()
    result_w.close()
    try:
        try:
            batch: list[Item] = []
            for item in items:
                batch.append(item)
                if len(batch) >= _BATCH:
                    items_w.send_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
                    batch = []
            if batch:
                items_w.send_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
            items_w.send_bytes(b"")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the helper stopped early (an error): its report says why
        finally:
            items_w.close()
        try:
            outcome = pickle.loads(result_r.recv_bytes())
        except EOFError:
            process.join(timeout=10)
            raise RuntimeError(f"the dataset builder process died (exit code {process.exitcode})") from None
    finally:
        result_r.close()
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
            process.join(timeout=10)
    if outcome[0] == "ok":
        return outcome[1], outcome[2]
    if outcome[0] == "invalid":
        raise InvalidInput(outcome[1], field=outcome[2])
    raise RuntimeError(f"the dataset builder process failed: {outcome[1]}")


def _consume(
    make_builder: Callable[[], ChatBuilder], items_r: Any, items_w: Any, result_r: Any, result_w: Any
) -> None:
    """The helper process: builds from the items it receives, reports files + tally (or the error)."""
    items_w.close()  # else the end-of-stream never arrives when the parent dies
    result_r.close()
    outcome: tuple[Any, ...]
    try:
        builder = make_builder()
        while True:
            data = items_r.recv_bytes()
            if not data:
                break
            if builder.full:
                continue
            for item in pickle.loads(data):
                if not builder.add(item):
                    break
        outcome = ("ok", *builder.finish())
    except EOFError:
        os._exit(1)  # the caller is gone (killed): nobody to report to, nothing to clean
    except InvalidInput as exc:
        outcome = ("invalid", exc.message, exc.field)
    except BaseException as exc:
        outcome = ("error", f"{type(exc).__name__}: {exc}", None)
    try:
        result_w.send_bytes(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
    except OSError:
        pass
    finally:
        items_r.close()
        result_w.close()
