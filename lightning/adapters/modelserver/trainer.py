"""The CPU learner behind fine-tuned models: training-file validation, training, evaluation.

Called by ``jobs.JobRunner`` (one job at a time, in a background thread) and,
for inference, by the app's chat route through ``TunedModel.predict_batch``.

What is learned from the examples (the first assistant tool call of each
example is the target; the last user message before it is the input):

- **tool selection**: TF-IDF word 1–2-grams + character 2–5-grams (scikit-learn)
  → a softmax classifier trained by minibatch SGD written here, so
  ``n_epochs``, ``batch_size`` and ``learning_rate_multiplier`` mean what they
  say; per-step and per-epoch cross-entropy losses are the job's metrics.
  It fine-tunes rather than replaces ``local-base``: at inference base's tool
  scores for the request (under the request's own tool descriptions and system
  prompt) are added to the learned logits, weighed by how unsure the learned
  part is, so an untrained model is base, what was learned with confidence
  decides, and base's choice stands where the learned part is unsure; a request
  offering a tool never seen in training is left to base. Other tool descriptions therefore help the tuned model as they
  help base;
- **arguments**, per tool and argument: whether the reading rule
  (``text.extract_argument``) can be trusted for this argument, and a value
  classifier over the same features for requests that do not state the value
  literally ("half a year" → 6, "the western region" → west, no region → all):
  learned value classes and learned defaults.

Hyperparameter "auto" values follow the service's published heuristics:
3 epochs (more for tiny files, fewer for huge ones), batch size ≈ 0.2 % of the
examples (1–256), learning-rate multiplier 0.1.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from lightning.adapters.modelserver.text import (
    ToolDef,
    arguments_equal,
    count_message_tokens,
    extract_argument,
    message_text,
    normalize_value,
)
from lightning.adapters.modelserver.zeroshot import Prediction, ZeroShotModel, fill_arguments

MIN_TRAINING_EXAMPLES = 10
BASE_LEARNING_RATE = 20.0  # x learning_rate_multiplier; features are L2-normalised, so this is a mild step
AUTO_LEARNING_RATE_MULTIPLIER = 0.1
VALID_ROLES = {"system", "developer", "user", "assistant", "tool", "function"}
_ABSENT = "<absent>"  # the value class "leave this optional argument out"


class TrainingFileError(ValueError):
    """The file breaks the fine-tuning format; ``str()`` is the message the job reports."""


class TrainingCancelled(Exception):
    """Raised inside training when the job was cancelled or the server is shutting down."""


# --- examples -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    """One training example reduced to what the learner needs."""

    query: str
    tool: str
    arguments: dict[str, Any]
    tools: tuple[ToolDef, ...]
    system_prompt: str
    tokens: int


def _fail(line: int, message: str) -> TrainingFileError:
    return TrainingFileError(f"Invalid file format. Line {line}: {message}")


def _parse_example(line_no: int, raw: str) -> Example:
    try:
        record = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _fail(line_no, f"not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise _fail(line_no, "each line must be a JSON object with 'messages'")
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _fail(line_no, "'messages' must be a non-empty list")
    raw_tools = record.get("tools") or []
    if not isinstance(raw_tools, list):
        raise _fail(line_no, "'tools' must be a list")
    try:
        tools = tuple(ToolDef.from_openai(tool) for tool in raw_tools)
    except ValueError as exc:
        raise _fail(line_no, str(exc)) from None
    system_prompt = ""
    query: str | None = None
    target: tuple[str, dict[str, Any]] | None = None
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _fail(line_no, f"message {index} is not an object")
        role = message.get("role")
        if role not in VALID_ROLES:
            raise _fail(line_no, f"message {index} has invalid role {role!r}")
        if role == "tool" and not isinstance(message.get("content"), str):
            raise _fail(line_no, f"message {index}: tool message content must be a string")
        if target is not None:
            continue
        if role in {"system", "developer"} and not system_prompt:
            system_prompt = message_text(message.get("content"))
        elif role == "user":
            query = message_text(message.get("content"))
        elif role == "assistant":
            target = _tool_call_of(line_no, index, message)
            if target is None:
                continue
            if query is None or not query.strip():
                raise _fail(line_no, "the assistant's tool call has no user message before it")
    if target is None:
        raise _fail(
            line_no,
            "no assistant message with tool_calls; the local trainer learns tool calls, so each example "
            "needs an assistant message with a function tool call",
        )
    names = {tool.name for tool in tools}
    if tools and target[0] not in names:
        raise _fail(line_no, f"the assistant calls {target[0]!r}, which is not among the example's tools")
    assert query is not None
    tokens = count_message_tokens(messages, raw_tools)
    return Example(
        query=query,
        tool=target[0],
        arguments=target[1],
        tools=tools,
        system_prompt=system_prompt,
        tokens=tokens,
    )


def _tool_call_of(line_no: int, index: int, message: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    calls = message.get("tool_calls")
    if calls is None and isinstance(message.get("function_call"), dict):
        calls = [{"type": "function", "function": message["function_call"]}]
    if not calls:
        return None
    if not isinstance(calls, list) or not isinstance(calls[0], dict):
        raise _fail(line_no, f"message {index}: tool_calls must be a list of objects")
    function = calls[0].get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
        raise _fail(line_no, f"message {index}: tool call needs function.name")
    arguments = function.get("arguments", "{}")
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            raise _fail(line_no, f"message {index}: tool call arguments are not valid JSON") from None
    if not isinstance(arguments, dict):
        raise _fail(line_no, f"message {index}: tool call arguments must be a JSON object")
    return function["name"], arguments


def parse_training_file(data: bytes, *, kind: str = "Training", min_examples: int = 1) -> list[Example]:
    """Validate a fine-tuning JSONL file and return its examples; ``TrainingFileError`` otherwise."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TrainingFileError(f"Invalid file format. {kind} file is not UTF-8 text") from None
    examples = [
        _parse_example(line_no, raw) for line_no, raw in enumerate(text.splitlines(), start=1) if raw.strip()
    ]
    if len(examples) < min_examples:
        raise TrainingFileError(
            f"{kind} file has {len(examples)} example(s), but must have at least {min_examples} examples"
        )
    return examples


# --- hyperparameters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainConfig:
    n_epochs: int
    batch_size: int
    learning_rate_multiplier: float
    seed: int


def resolve_hyperparameters(requested: dict[str, Any], n_examples: int, seed: int) -> TrainConfig:
    """Turn "auto" into numbers the way the service documents it."""
    epochs = requested.get("n_epochs", "auto")
    if epochs in (None, "auto"):
        epochs = 3
        if n_examples * epochs < 100:
            epochs = min(25, math.ceil(100 / max(n_examples, 1)))
        elif n_examples * epochs > 25_000:
            epochs = max(1, 25_000 // n_examples)
    batch = requested.get("batch_size", "auto")
    if batch in (None, "auto"):
        batch = max(1, min(256, round(n_examples * 0.002)))
    lr = requested.get("learning_rate_multiplier", "auto")
    if lr in (None, "auto"):
        lr = AUTO_LEARNING_RATE_MULTIPLIER
    return TrainConfig(
        n_epochs=int(epochs), batch_size=int(batch), learning_rate_multiplier=float(lr), seed=seed
    )


# --- features and the softmax learner -------------------------------------------------------------


class Featurizer:
    """TF-IDF of word 1–2-grams and character 2–5-grams, each L2-normalised, concatenated."""

    def __init__(self) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.word = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
        self.char = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True, min_df=1
        )
        self._analyzers: list[Any] | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_analyzers"] = None  # rebuilt on demand; closures do not pickle
        return state

    def fit(self, texts: list[str]) -> Featurizer:
        self.word.fit(texts)
        self.char.fit(texts)
        return self

    def transform(self, texts: list[str]) -> sparse.csr_matrix:
        if len(texts) <= 16:
            return self._transform_few(texts)
        stacked = sparse.hstack([self.word.transform(texts), self.char.transform(texts)], format="csr")
        return (stacked * (1 / math.sqrt(2))).astype(np.float32)

    def _transform_few(self, texts: list[str]) -> sparse.csr_matrix:
        """The same matrix as ``transform`` without scikit-learn's per-call input checks.

        A chat request featurizes one query; the checks cost ~1 ms, the arithmetic ~0.1 ms.
        Same formula: sublinear tf (1 + log count) x idf, L2-normalised per vectorizer.
        """
        if self._analyzers is None:
            self._analyzers = [self.word.build_analyzer(), self.char.build_analyzer()]
        offset = len(self.word.vocabulary_)
        indptr = [0]
        indices: list[int] = []
        values: list[float] = []
        for text in texts:
            for position, (vectorizer, analyzer) in enumerate(
                zip((self.word, self.char), self._analyzers, strict=True)
            ):
                vocabulary = vectorizer.vocabulary_
                counts = Counter(vocabulary[term] for term in analyzer(text) if term in vocabulary)
                if not counts:
                    continue
                columns = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
                weights = 1.0 + np.log(np.fromiter(counts.values(), dtype=np.float64, count=len(counts)))
                weights *= vectorizer.idf_[columns]
                weights /= np.sqrt((weights**2).sum()) * math.sqrt(2)
                order = np.argsort(columns)
                indices.extend((columns[order] + (offset if position else 0)).tolist())
                values.extend(weights[order].tolist())
            indptr.append(len(indices))
        shape = (len(texts), offset + len(self.char.vocabulary_))
        return sparse.csr_matrix(
            (np.asarray(values, dtype=np.float32), np.asarray(indices, dtype=np.int32), np.asarray(indptr)),
            shape=shape,
        )


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted: np.ndarray = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def _cross_entropy(probs: np.ndarray, y: np.ndarray) -> float:
    if len(y) == 0:
        return 0.0
    picked = probs[np.arange(len(y)), y]
    return float(-np.log(np.clip(picked, 1e-12, 1.0)).mean()) + 0.0  # + 0.0: no "-0.0" in the metrics


@dataclass
class Softmax:
    """A linear softmax classifier over sparse features."""

    classes: list[str]
    weights: np.ndarray
    bias: np.ndarray

    @classmethod
    def zeros(cls, classes: list[str], n_features: int) -> Softmax:
        return cls(
            classes=classes,
            weights=np.zeros((n_features, len(classes)), dtype=np.float32),
            bias=np.zeros(len(classes), dtype=np.float32),
        )

    def proba(self, x: sparse.csr_matrix, offset: np.ndarray | None = None) -> np.ndarray:
        logits = np.asarray(x @ self.weights, dtype=np.float64) + self.bias
        if offset is not None:
            logits += offset
        return _softmax(logits)

    def sgd_step(self, x: sparse.csr_matrix, y: np.ndarray, lr: float) -> tuple[float, float]:
        """One minibatch update; returns the batch's loss and accuracy before the update."""
        probs = self.proba(x)
        loss = _cross_entropy(probs, y)
        accuracy = float((probs.argmax(axis=1) == y).mean())
        grad = probs
        grad[np.arange(len(y)), y] -= 1.0
        grad /= len(y)
        # Only the rows of features present in the batch change: update those, not the whole matrix.
        columns = np.unique(x.indices)
        sub = x[:, columns]
        self.weights[columns] -= (lr * (sub.T @ grad)).astype(np.float32)
        self.bias -= (lr * grad.sum(axis=0)).astype(np.float32)
        return loss, accuracy

    def fit(
        self,
        x: sparse.csr_matrix,
        y: np.ndarray,
        *,
        config: TrainConfig,
        rng: np.random.Generator,
        on_step: Callable[[int, float, float], None] | None = None,
        on_epoch: Callable[[int], None] | None = None,
    ) -> None:
        lr = BASE_LEARNING_RATE * config.learning_rate_multiplier
        step = 0
        for epoch in range(1, config.n_epochs + 1):
            order = rng.permutation(x.shape[0])
            for start in range(0, len(order), config.batch_size):
                batch = order[start : start + config.batch_size]
                loss, accuracy = self.sgd_step(x[batch], y[batch], lr)
                step += 1
                if on_step is not None:
                    on_step(step, loss, accuracy)
            if on_epoch is not None:
                on_epoch(epoch)


# --- the base model's prior ---------------------------------------------------------------------

PRIOR_WEIGHT = 3.0
"""How much ``local-base``'s tool choice weighs in the tuned model where the learned part is unsure
(the logit of base's best tool): enough to decide there, little against what was learned for sure."""

_BASE = ZeroShotModel()
_TIE_BREAK = 1e-3  # a sliver of logit per position in the tool list


def base_prior(
    queries: list[str], classes: list[str], tools: list[ToolDef], system_prompt: str, weight: float
) -> np.ndarray:
    """``local-base``'s tool scores as logits over ``classes`` (rows: queries), each row scaled so
    base's best tool gets ``weight``; tools not offered and requests sharing no word get 0.

    Ties go the way base breaks them, to the tool listed first in the request.
    """
    prior = np.zeros((len(queries), len(classes)), dtype=np.float64)
    if not tools or weight == 0:
        return prior
    column = {name: index for index, name in enumerate(classes)}
    order = {tool.name: position for position, tool in enumerate(tools)}
    for row, query in enumerate(queries):
        scores = _BASE.scores(query, tools, system_prompt)
        best = max(scores.values(), default=0.0)
        if best <= 0:
            continue
        for name, score in scores.items():
            if name in column:
                prior[row, column[name]] = weight * (score / best - _TIE_BREAK * order[name])
    return prior


def with_base(
    selector: Softmax, x: sparse.csr_matrix, prior: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """Tool probabilities of the tuned model: the learned logits plus base's, base's weighed by how
    unsure the learned part is (full weight when it favours no tool, little when it is sure).

    ``mask`` (the tools the request allows) decides which tools the uncertainty is measured over.
    """
    learned = selector.proba(x)
    if mask is not None:
        learned = learned[:, mask]
        learned /= learned.sum(axis=1, keepdims=True)
    choices = learned.shape[1]
    unsure = (1.0 - learned.max(axis=1)) / (1.0 - 1.0 / choices) if choices > 1 else np.zeros(len(learned))
    return selector.proba(x, prior * np.clip(unsure, 0.0, 1.0)[:, None])


def _example_prior(examples: list[Example], classes: list[str], weight: float) -> np.ndarray:
    """The base prior of each example under its own tools and system prompt."""
    rows = [
        base_prior([example.query], classes, list(example.tools), example.system_prompt, weight)[0]
        for example in examples
    ]
    return np.vstack(rows) if rows else np.zeros((0, len(classes)), dtype=np.float64)


# --- argument models --------------------------------------------------------------------------------


@dataclass
class ArgumentModel:
    """How one tool argument is filled: the reading rule when trusted, else a learned value class."""

    name: str
    schema: dict[str, Any]
    trust_rule: bool
    classifier: Softmax | None  # over json-encoded values (or _ABSENT)
    rule_precision: float | None = None

    def decode(self, label: str) -> Any:
        return None if label == _ABSENT else json.loads(label)


def _train_argument_model(
    name: str,
    schema: dict[str, Any],
    examples: list[Example],
    x: sparse.csr_matrix,
    config: TrainConfig,
    rng: np.random.Generator,
) -> ArgumentModel:
    gold = [
        normalize_value(example.arguments[name], schema) if name in example.arguments else None
        for example in examples
    ]
    ruled = [extract_argument(name, schema, example.query) for example in examples]
    hits = [index for index, value in enumerate(ruled) if value is not None]
    correct = sum(1 for index in hits if normalize_value(ruled[index], schema) == gold[index])
    precision = correct / len(hits) if hits else None
    trust = precision is None or precision >= 0.5
    rows = [
        index
        for index in range(len(examples))
        if not trust or ruled[index] is None or normalize_value(ruled[index], schema) != gold[index]
    ]
    classifier: Softmax | None = None
    if rows:
        labels = [_ABSENT if gold[index] is None else json.dumps(gold[index]) for index in rows]
        classes = sorted(set(labels))
        classifier = Softmax.zeros(classes, x.shape[1])
        if len(classes) > 1:
            index_of = {label: position for position, label in enumerate(classes)}
            y = np.array([index_of[label] for label in labels])
            # Argument classifiers see few rows (the requests that do not state the value): give them
            # ~2,000 example presentations (up to 20 passes), so a phrasing seen a handful of times
            # ("the next year" → 12) sticks; large files need no more than the job's epochs.
            arg_config = TrainConfig(
                n_epochs=max(config.n_epochs, min(20, math.ceil(2000 / len(rows)))),
                batch_size=min(32, max(8, config.batch_size)),
                learning_rate_multiplier=config.learning_rate_multiplier,
                seed=config.seed,
            )
            classifier.fit(x[rows], y, config=arg_config, rng=rng)
    return ArgumentModel(
        name=name, schema=schema, trust_rule=trust, classifier=classifier, rule_precision=precision
    )


# --- the fine-tuned model ---------------------------------------------------------------------------


@dataclass
class TunedModel:
    """A fine-tuned model: featurizer, tool selector (+ per-epoch checkpoints), argument models.

    It answers on top of ``local-base``: a tool's logit is what the selector learned plus base's
    score for it (``base_prior``, under the request's own tool descriptions and system prompt),
    weighed by how unsure the learned part is (``with_base``). Where the learned part is sure
    (requests like the examples), it decides; where it is unsure (a phrasing unlike any example),
    base's choice stands; untrained, it is base. A request offering a tool never seen in training
    is left to base entirely.
    """

    base_model: str
    featurizer: Featurizer
    selector: Softmax
    tools: dict[str, ToolDef]
    arguments: dict[str, dict[str, ArgumentModel]]
    checkpoints: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    prior_weight: float = 0.0  # 0: a model trained before the base prior existed

    def at_checkpoint(self, step: int | None) -> TunedModel:
        if step is None or step not in self.checkpoints:
            return self
        weights, bias = self.checkpoints[step]
        selector = Softmax(classes=self.selector.classes, weights=weights, bias=bias)
        return TunedModel(
            self.base_model, self.featurizer, selector, self.tools, self.arguments, {}, self._prior_weight
        )

    @property
    def _prior_weight(self) -> float:
        return getattr(self, "prior_weight", 0.0)  # models pickled before the field existed

    def predict_batch(
        self,
        queries: list[str],
        *,
        allowed: list[str] | None = None,
        forced: str | None = None,
        request_tools: dict[str, ToolDef] | None = None,
        system_prompt: str | None = None,
    ) -> list[Prediction | None]:
        """Predictions per query; None where base should answer instead (the caller falls back):
        the request offers a tool never seen in training, or none of the allowed tools was learned."""
        if not queries:
            return []
        if allowed is None and request_tools:
            allowed = list(request_tools)
        if allowed is not None and any(name not in self.tools for name in allowed):
            return [None] * len(queries)
        classes = self.selector.classes
        mask = np.ones(len(classes), dtype=bool)
        if forced is not None:
            mask = np.array([name == forced for name in classes])
        elif allowed is not None:
            mask = np.array([name in allowed for name in classes])
        if not mask.any():
            return [None] * len(queries)
        x = self.featurizer.transform(queries)
        prior_tools = (
            list(request_tools.values()) if request_tools else [self.tools[name] for name in classes]
        )
        prior = base_prior(queries, classes, prior_tools, system_prompt or "", self._prior_weight)
        probs = with_base(self.selector, x, prior, mask)
        probs[:, ~mask] = -1.0
        chosen = probs.argmax(axis=1)
        results: list[Prediction | None] = []
        arg_cache: dict[str, dict[str, list[Any]]] = {}
        for row, query in enumerate(queries):
            tool_name = classes[chosen[row]]
            tool = (request_tools or {}).get(tool_name) or self.tools[tool_name]
            if tool_name not in arg_cache:
                arg_cache[tool_name] = self._learned_values(tool_name, x)
            arguments = self._arguments(tool, query, row, arg_cache[tool_name])
            results.append(
                Prediction(tool=tool_name, arguments=arguments, confidence=float(probs[row].max()))
            )
        return results

    def _learned_values(self, tool_name: str, x: sparse.csr_matrix) -> dict[str, list[Any]]:
        values: dict[str, list[Any]] = {}
        for name, model in self.arguments.get(tool_name, {}).items():
            if model.classifier is None:
                continue
            picks = model.classifier.proba(x).argmax(axis=1)
            values[name] = [model.decode(model.classifier.classes[pick]) for pick in picks]
        return values

    def _arguments(
        self, tool: ToolDef, query: str, row: int, learned: dict[str, list[Any]]
    ) -> dict[str, Any]:
        models = self.arguments.get(tool.name, {})
        if not models:
            return fill_arguments(tool, query)
        arguments: dict[str, Any] = {}
        fallback = fill_arguments(tool, query)
        for name, spec in tool.properties.items():
            model = models.get(name)
            if model is None:
                if name in fallback:
                    arguments[name] = fallback[name]
                continue
            value = extract_argument(name, spec, query) if model.trust_rule else None
            if value is None and name in learned:
                value = learned[name][row]
                if value is None:  # learned: leave this optional argument out
                    continue
            if value is None:
                if name not in fallback:
                    continue
                value = fallback[name]
            arguments[name] = value
        return arguments


# --- training ---------------------------------------------------------------------------------------


@dataclass
class StepMetric:
    step: int
    train_loss: float
    train_accuracy: float
    valid_loss: float | None = None
    valid_accuracy: float | None = None


@dataclass
class EpochReport:
    epoch: int
    n_epochs: int
    step: int
    total_steps: int
    train_loss: float
    train_accuracy: float
    valid_loss: float | None
    valid_accuracy: float | None


@dataclass
class Evaluation:
    """Base vs tuned on held-out examples (the validation file, or the training file when none)."""

    split: str
    examples: int
    base_tool_accuracy: float
    tuned_tool_accuracy: float
    base_argument_exact_match: float
    tuned_argument_exact_match: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "examples": self.examples,
            "base_model": "local-base",
            "base_tool_accuracy": round(self.base_tool_accuracy, 4),
            "tuned_tool_accuracy": round(self.tuned_tool_accuracy, 4),
            "base_argument_exact_match": round(self.base_argument_exact_match, 4),
            "tuned_argument_exact_match": round(self.tuned_argument_exact_match, 4),
        }


@dataclass
class TrainResult:
    model: TunedModel
    config: TrainConfig
    steps: list[StepMetric]
    epochs: list[EpochReport]
    evaluation: Evaluation
    trained_tokens: int
    seconds: float


def _collect_tools(examples: list[Example]) -> dict[str, ToolDef]:
    tools: dict[str, ToolDef] = {}
    for example in examples:
        for tool in example.tools:
            tools.setdefault(tool.name, tool)
    # Examples without "tools": infer a schema from the arguments the examples pass, so the
    # arguments are still learned (integers stay integers; everything else is a string).
    seen: dict[str, dict[str, list[Any]]] = {}
    for example in examples:
        if example.tool not in tools:
            for name, value in example.arguments.items():
                seen.setdefault(example.tool, {}).setdefault(name, []).append(value)
    for example in examples:
        if example.tool in tools:
            continue
        properties = {
            name: {
                "type": "integer"
                if all(isinstance(v, int) and not isinstance(v, bool) for v in values)
                else "string"
            }
            for name, values in seen.get(example.tool, {}).items()
        }
        tools[example.tool] = ToolDef(
            name=example.tool, parameters={"type": "object", "properties": properties}
        )
    return tools


def train(
    training: list[Example],
    validation: list[Example],
    config: TrainConfig,
    *,
    base_model: str,
    on_epoch: Callable[[EpochReport], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    keep_checkpoints: int = 3,
) -> TrainResult:
    """Fit a ``TunedModel``; report each epoch; ``TrainingCancelled`` when ``should_stop()`` turns true."""
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    featurizer = Featurizer().fit([example.query for example in training])
    x = featurizer.transform([example.query for example in training])
    classes = sorted({example.tool for example in training})
    index_of = {name: position for position, name in enumerate(classes)}
    y = np.array([index_of[example.tool] for example in training])
    x_valid = featurizer.transform([example.query for example in validation]) if validation else None
    y_valid = np.array([index_of.get(example.tool, -1) for example in validation]) if validation else None
    # The served model adds local-base's scores to what is learned here: the epoch metrics are the
    # served model's (the selector itself learns from the examples alone).
    prior = _example_prior(training, classes, PRIOR_WEIGHT)
    prior_valid = _example_prior(validation, classes, PRIOR_WEIGHT) if validation else None

    selector = Softmax.zeros(classes, x.shape[1])
    steps_per_epoch = math.ceil(len(training) / config.batch_size)
    total_steps = steps_per_epoch * config.n_epochs
    steps: list[StepMetric] = []
    epochs: list[EpochReport] = []
    checkpoints: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def on_step(step: int, loss: float, accuracy: float) -> None:
        if should_stop is not None and should_stop():
            raise TrainingCancelled
        steps.append(StepMetric(step=step, train_loss=loss, train_accuracy=accuracy))

    def end_epoch(epoch: int) -> None:
        probs = with_base(selector, x, prior)
        train_loss = _cross_entropy(probs, y)
        train_accuracy = float((probs.argmax(axis=1) == y).mean())
        valid_loss = valid_accuracy = None
        if x_valid is not None and y_valid is not None and prior_valid is not None:
            known = y_valid >= 0
            valid_probs = with_base(selector, x_valid, prior_valid)
            valid_accuracy = float((valid_probs.argmax(axis=1) == y_valid).mean())
            # Validation examples calling a tool never seen in training count as certain misses.
            valid_loss = float(
                (_cross_entropy(valid_probs[known], y_valid[known]) * known.sum() + 27.6 * (~known).sum())
                / len(y_valid)
            )
        steps[-1].valid_loss = valid_loss
        steps[-1].valid_accuracy = valid_accuracy
        checkpoints[steps[-1].step] = (selector.weights.copy(), selector.bias.copy())
        for old in sorted(checkpoints)[:-keep_checkpoints]:
            del checkpoints[old]
        report = EpochReport(
            epoch=epoch,
            n_epochs=config.n_epochs,
            step=steps[-1].step,
            total_steps=total_steps,
            train_loss=train_loss,
            train_accuracy=train_accuracy,
            valid_loss=valid_loss,
            valid_accuracy=valid_accuracy,
        )
        epochs.append(report)
        if on_epoch is not None:
            on_epoch(report)

    selector.fit(x, y, config=config, rng=rng, on_step=on_step, on_epoch=end_epoch)

    tools = _collect_tools(training)
    argument_models: dict[str, dict[str, ArgumentModel]] = {}
    for name in classes:
        rows = [index for index, example in enumerate(training) if example.tool == name]
        subset = [training[index] for index in rows]
        argument_models[name] = {
            arg: _train_argument_model(arg, spec, subset, x[rows], config, rng)
            for arg, spec in tools[name].properties.items()
        }
        if should_stop is not None and should_stop():
            raise TrainingCancelled
    model = TunedModel(
        base_model=base_model,
        featurizer=featurizer,
        selector=selector,
        tools=tools,
        arguments=argument_models,
        checkpoints=checkpoints,
        prior_weight=PRIOR_WEIGHT,
    )
    held_out, split = (validation, "validation") if validation else (training, "train")
    evaluation = evaluate(model, held_out, split=split)
    return TrainResult(
        model=model,
        config=config,
        steps=steps,
        epochs=epochs,
        evaluation=evaluation,
        trained_tokens=sum(example.tokens for example in training) * config.n_epochs,
        seconds=time.perf_counter() - started,
    )


def evaluate(model: TunedModel, examples: list[Example], *, split: str) -> Evaluation:
    """Tool-selection accuracy and argument exact match (right tool and identical arguments).

    Both models see each example as it was written: its tools (the learned ones when it has none)
    and its system prompt.
    """
    base = ZeroShotModel()
    base_tool = base_args = tuned_tool = tuned_args = 0
    groups: dict[tuple[Any, ...], list[int]] = {}
    for index, example in enumerate(examples):
        signature = (
            example.system_prompt,
            json.dumps([tool.__dict__ for tool in example.tools], sort_keys=True),
        )
        groups.setdefault(signature, []).append(index)
    tuned: list[Prediction | None] = [None] * len(examples)
    for rows in groups.values():
        first = examples[rows[0]]
        request_tools = {tool.name: tool for tool in first.tools} or None
        predicted = model.predict_batch(
            [examples[row].query for row in rows],
            request_tools=request_tools,
            system_prompt=first.system_prompt,
        )
        for row, prediction in zip(rows, predicted, strict=True):
            tuned[row] = prediction
    for example, tuned_prediction in zip(examples, tuned, strict=True):
        tools = list(example.tools) or list(model.tools.values())
        schema = next((tool for tool in tools if tool.name == example.tool), None)
        base_prediction = base.predict(example.query, tools, system_prompt=example.system_prompt)
        if base_prediction.tool == example.tool:
            base_tool += 1
            base_args += arguments_equal(schema, base_prediction.arguments, example.arguments)
        if tuned_prediction is None:  # a tool it never saw: the server answers with the base model
            tuned_prediction = base_prediction
        if tuned_prediction.tool == example.tool:
            tuned_tool += 1
            tuned_args += arguments_equal(schema, tuned_prediction.arguments, example.arguments)
    count = max(len(examples), 1)
    return Evaluation(
        split=split,
        examples=len(examples),
        base_tool_accuracy=base_tool / count,
        tuned_tool_accuracy=tuned_tool / count,
        base_argument_exact_match=base_args / count,
        tuned_argument_exact_match=tuned_args / count,
    )
