"""The chat page at ``/`` of ``kb serve``: a conversation over the bundle in any browser, offline.

One HTML page, one script and one stylesheet, all served from this package (no external
scripts, fonts or styles; a Content-Security-Policy of ``'self'`` says so to the browser). The
page talks to ``/v1/chat/completions`` with ``stream: true`` and sends the whole conversation,
so follow-ups are answered in context; it shows the answer as it streams, ``uncertain`` as such,
citations as links (the atom page and the transcript moment in the review site when
``serve.site_url`` is set, else the atom's JSON), and suggestions apart. With a bearer key
configured, it asks for the key and keeps it in ``sessionStorage`` (this tab only).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

PAGES = {
    "/": ("chat.html", "text/html; charset=utf-8"),
    "/chat.js": ("chat.js", "text/javascript; charset=utf-8"),
    "/chat.css": ("chat.css", "text/css; charset=utf-8"),
}
CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


def _static(name: str) -> bytes:
    return resources.files("pipeline.service").joinpath("static", name).read_bytes()


def add_chat_page_routes(app: Any, service: Any) -> None:
    from fastapi.responses import Response

    def page(name: str, media_type: str):
        body = _static(name)

        def serve() -> Any:
            return Response(
                body, media_type=media_type, headers={"content-security-policy": CSP, "cache-control": "no-cache"}
            )

        return serve

    for path, (name, media_type) in PAGES.items():
        app.add_api_route(path, page(name, media_type), methods=["GET"], include_in_schema=False)
