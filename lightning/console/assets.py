"""The console page's static files and the headers every host sends with them.

The page is plain HTML, CSS and JavaScript modules in ``static/`` — no build step, nothing from a CDN.
Both hosts serve exactly these files (``lightning/console/app.py``, ``lightning/functions/console.py``)
with ``SECURITY_HEADERS``: a Content-Security-Policy that allows scripts, styles and connections from
the page's own origin only (no inline script or style, no ``eval``), no framing, no referrer.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).resolve().parent / "static"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
"""Sent with every response of both hosts' console routes (the API's too, on the console host)."""


def asset_names() -> list[str]:
    return sorted(p.name for p in STATIC_DIR.iterdir() if p.suffix in CONTENT_TYPES)


def read_asset(name: str) -> tuple[bytes, str] | None:
    """(content, content type) of the static file ``name`` (``""`` is the page); None for anything else —
    only the files of ``static/`` by their plain name, never a path."""
    name = name or "index.html"
    if name not in asset_names():
        return None
    return (STATIC_DIR / name).read_bytes(), CONTENT_TYPES[Path(name).suffix]
