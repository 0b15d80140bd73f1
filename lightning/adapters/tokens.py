"""O200kTokenCounter: the TokenCounter port over ``bpe_openai`` (o200k_base bundled, no download).

Built by the Container (``Container.tokens``) for the dataset commands and the loop.
``bpe_openai`` refuses inputs of 1,000,000 characters or more, so long texts are
counted in chunks cut at whitespace (a cut can differ from a whole-text count by
a token or two per chunk; only texts over 200,000 characters are ever chunked).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import threading
from pathlib import Path
from typing import Any

_CHUNK = 200_000
_lock = threading.Lock()
_backends: dict[str, Any] = {}


def _bindings() -> Any:
    """The Rust extension of ``bpe_openai`` (its ``count()`` builds no token lists).

    Loaded on its own when possible: the package's ``__init__`` also builds Python copies of the
    merge tables (~60 MB and ~0.4 s) that counting never uses. Falls back to the normal import.
    """
    try:
        spec = importlib.util.find_spec("bpe_openai")
        folder = Path(spec.origin).parent if spec is not None and spec.origin else None
        library = next(folder.glob("_bindings*.so"), None) if folder is not None else None
        if library is not None:
            loader = importlib.machinery.ExtensionFileLoader("bpe_openai._bindings", str(library))
            module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))  # type: ignore[arg-type]
            loader.exec_module(module)
            return module
    except (ImportError, OSError):
        pass
    from bpe_openai import _bindings

    return _bindings


def _backend(encoding: str) -> Any:
    with _lock:
        backend = _backends.get(encoding)
        if backend is None:
            backend = _backends[encoding] = _bindings().tokenizer_for_encoding(encoding)
        return backend


class O200kTokenCounter:
    """Counts o200k_base tokens offline; loading the encoding takes ~0.1 s once per process."""

    def __init__(self, encoding: str = "o200k_base") -> None:
        self._encoding = encoding
        self._count = _backend(encoding).count

    @property
    def encoding(self) -> str:
        return self._encoding

    def count(self, text: str) -> int:
        try:
            return self._count_valid(text)
        except UnicodeEncodeError:  # lone surrogates: written as "?" in the file, counted the same
            return self._count_valid(text.encode("utf-8", "replace").decode("utf-8"))

    def _count_valid(self, text: str) -> int:
        if len(text) < _CHUNK:
            return int(self._count(text))
        total = 0
        start = 0
        while start < len(text):
            end = min(start + _CHUNK, len(text))
            if end < len(text):
                space = text.rfind(" ", start + _CHUNK // 2, end)
                end = space if space > start else end
            total += int(self._count(text[start:end]))
            start = end
        return total
