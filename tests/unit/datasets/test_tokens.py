"""O200kTokenCounter: o200k_base counts offline, long texts chunked, odd input survives."""

from __future__ import annotations

import bpe_openai

from lightning.adapters.tokens import O200kTokenCounter


def test_counts_match_the_o200k_encoding() -> None:
    counter = O200kTokenCounter()
    encoding = bpe_openai.get_encoding("o200k_base")
    for text in [
        "",
        "hello world",
        "Analyze customer churn for Q4 2025",
        '{"churn_rate":0.12}',
        "héllo wörld ✓",
    ]:
        assert counter.count(text) == len(encoding.encode_ordinary(text))
    assert counter.encoding == "o200k_base"
    assert counter.count("hello world") == 2  # o200k_base: "hello", " world"


def test_special_token_strings_count_as_text() -> None:
    assert O200kTokenCounter().count("<|endoftext|>") > 1


def test_texts_over_the_library_limit_are_chunked() -> None:
    counter = O200kTokenCounter()
    text = "The quarterly churn analysis shows stable retention. " * 40_000  # ~2.1M chars
    whole = counter.count(text[:150_000]) * (len(text) / 150_000)
    assert abs(counter.count(text) - whole) / whole < 0.01


def test_lone_surrogates_do_not_crash() -> None:
    assert O200kTokenCounter().count("bad \ud800 text") > 0
