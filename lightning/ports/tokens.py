"""TokenCounter: counts tokens the way the fine-tuning service bills them (o200k_base).

Implemented by ``lightning.adapters.tokens.O200kTokenCounter`` (offline, through
``bpe_openai``); the dataset builder takes one as an argument so services never
import a tokenizer. Message overheads live in ``lightning.domain.finetune_format``.
"""

from __future__ import annotations

from typing import Protocol


class TokenCounter(Protocol):
    @property
    def encoding(self) -> str:
        """Encoding name, e.g. ``o200k_base``."""
        ...

    def count(self, text: str) -> int:
        """Tokens of ``text`` as ordinary text (special-token strings count as text)."""
        ...
