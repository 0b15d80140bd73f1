"""The review console's page, served by the Function App (blueprint ``bp``) next to the HTTP API.

``GET /api/console/`` answers the page and ``GET /api/console/{file}`` its scripts and styles — static
files with no data in them, so the route is anonymous (a browser cannot send a function key for a page
load); App Service authentication (Entra ID sign-in, "require authentication") guards the whole app,
page included. The page then calls the API routes beside it (``/api/review-queue`` …) with the
function key, and every label records the signed-in principal (``docs/console.md``).
"""

from __future__ import annotations

import azure.functions as func

from lightning.console.assets import SECURITY_HEADERS, read_asset

bp = func.Blueprint()  # type: ignore[no-untyped-call]


@bp.route(route="console/{*path}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def console_page(req: func.HttpRequest) -> func.HttpResponse:
    path = req.route_params.get("path") or ""
    if not path and not req.url.split("?", 1)[0].endswith("/"):
        # The page loads its files by relative URLs: /api/console → /api/console/
        return func.HttpResponse(status_code=308, headers={"Location": "console/", **SECURITY_HEADERS})
    found = read_asset(path)
    if found is None:
        return func.HttpResponse(
            '{"error": {"type": "NotFound", "message": "no such console file"}}',
            status_code=404,
            mimetype="application/json",
            headers=SECURITY_HEADERS,
        )
    content, content_type = found
    return func.HttpResponse(
        content,
        status_code=200,
        headers={**SECURITY_HEADERS, "Content-Type": content_type, "Cache-Control": "no-cache"},
    )
