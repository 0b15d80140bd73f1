"""The review console: a page where people review episodes, correct the agent and watch the loop.

``lightning-loop serve-console`` serves it (``app.py``, Starlette) with the shared HTTP API
(``lightning/api``); the Function App serves the same static page (``lightning/functions/console.py``)
next to the same API. ``assets.py`` holds the page's files and security headers, ``auth.py`` the
console's bearer tokens, ``report.py`` the HTML report the demo writes. Nothing here builds anything
at import.
"""
