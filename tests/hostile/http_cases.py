"""The hostile HTTP corpus: one request per case and what kb must answer.

Each case is data: method, path, raw body bytes, extra headers, the status (or statuses) it must
get, the error ``type`` of kb's JSON error shape (guards.error_body) and a piece of text the
message must hold (the field, header or setting at fault). No case may get a 5xx; the server must
answer the next request. ``ROUTE_METHOD_CASES`` adds HEAD and OPTIONS on every route.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from tests.hostile.kbserve import KEY


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    status: tuple[int, ...] = (422,)
    type: str | None = "invalid_request_error"
    names: str | None = None  # text the error message must contain
    auth: bool = True
    content_type: str | None = "application/json"
    raw: bytes | None = None  # the whole request as bytes (framing cases)


def j(value: object) -> bytes:
    return json.dumps(value).encode()


def chat(*messages: object, **more: object) -> bytes:
    return j({"model": "kb", "messages": list(messages), **more})


USER = {"role": "user", "content": "How do I reset the Argo CD admin password?"}
S, A, C = "/v1/search", "/v1/ask", "/v1/chat/completions"
DEEP = 10_000

CASES: list[Case] = [
    # -- wrong content types ------------------------------------------------------------------
    Case(
        "search-text-plain",
        "POST",
        S,
        j({"query": "x"}),
        content_type="text/plain",
        status=(415,),
        type="invalid_content_type",
        names="Content-Type",
    ),
    Case(
        "search-form",
        "POST",
        S,
        b"query=argo",
        content_type="application/x-www-form-urlencoded",
        status=(415,),
        type="invalid_content_type",
        names="application/json",
    ),
    Case(
        "ask-multipart",
        "POST",
        A,
        b"--x\r\nContent-Disposition: form-data; name=q\r\n\r\nhi\r\n--x--\r\n",
        content_type="multipart/form-data; boundary=x",
        status=(415,),
        type="invalid_content_type",
        names="JSON",
    ),
    Case(
        "chat-xml",
        "POST",
        C,
        b"<messages><m>hi</m></messages>",
        content_type="application/xml",
        status=(415,),
        type="invalid_content_type",
        names="Content-Type",
    ),
    # -- invalid UTF-8 / Unicode / NUL ---------------------------------------------------------
    Case("search-latin1", "POST", S, b'{"query": "caf\xe9"}', status=(400,), type="invalid_encoding", names="UTF-8"),
    Case(
        "ask-bom-bytes",
        "POST",
        A,
        b'{"question": "\xff\xfe hi"}',
        status=(400,),
        type="invalid_encoding",
        names="UTF-8",
    ),
    Case(
        "chat-overlong",
        "POST",
        C,
        chat({"role": "user", "content": "x"}).replace(b'"x"', b'"\xc0\xaf"'),
        status=(400,),
        type="invalid_encoding",
        names="byte",
    ),
    Case(
        "ask-truncated-utf8",
        "POST",
        A,
        b'{"question": "euro \xe2\x82"}',
        status=(400,),
        type="invalid_encoding",
        names="UTF-8",
    ),
    Case(
        "chat-lone-surrogate",
        "POST",
        C,
        chat({"role": "user", "content": "PLACEHOLDER"}).replace(b"PLACEHOLDER", b"\\ud800"),
        status=(400,),
        type="invalid_unicode",
        names="surrogate",
    ),
    Case("search-nul-escape", "POST", S, b'{"query": "a\\u0000b"}', status=(400,), type="invalid_text", names="NUL"),
    # -- huge and wrong numbers ----------------------------------------------------------------
    Case("search-k-inf", "POST", S, b'{"query": "argo", "k": 1e400}', names="'k'"),
    Case("search-k-30-digits", "POST", S, j({"query": "argo", "k": 10**30}), names="'k'"),
    Case("search-k-negative", "POST", S, j({"query": "argo", "k": -1}), names="'k'"),
    Case("ask-k-fraction", "POST", A, j({"question": "argo", "k": 1.5}), names="'k'"),
    Case(
        "search-k-200-digits",
        "POST",
        S,
        b'{"query": "argo", "k": ' + b"7" * 200 + b"}",
        status=(400,),
        type="invalid_json",
        names="number",
    ),
    Case("chat-n-huge", "POST", C, chat(USER, n=10**20), status=(400,), names="n=1"),
    # -- deep nesting --------------------------------------------------------------------------
    Case(
        "search-filters-deep-array",
        "POST",
        S,
        b'{"query": "x", "filters": ' + b"[" * DEEP + b"]" * DEEP + b"}",
        status=(400,),
        type="invalid_json",
        names="deep",
    ),
    Case(
        "ask-history-deep-object",
        "POST",
        A,
        b'{"question": "x", "history": ' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}",
        status=(400,),
        type="invalid_json",
        names="deep",
    ),
    Case(
        "search-filters-nested-40",
        "POST",
        S,
        b'{"query": "argo", "filters": {"type": ' + b'{"a":' * 40 + b"1" + b"}" * 42,
        names="filter",
    ),
    # -- OpenAI-style messages: null and malformed content parts -------------------------------
    Case("chat-content-null-part", "POST", C, chat({"role": "user", "content": [None]}), names="messages.0.content"),
    Case(
        "chat-text-part-null",
        "POST",
        C,
        chat({"role": "user", "content": [{"type": "text", "text": None}]}),
        names="text",
    ),
    Case(
        "chat-text-part-list",
        "POST",
        C,
        chat({"role": "user", "content": [{"type": "text", "text": ["a"]}]}),
        names="text",
    ),
    Case(
        "chat-image-only",
        "POST",
        C,
        chat({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}),
        names="'messages'",
    ),
    Case("chat-content-null", "POST", C, chat({"role": "user", "content": None}), names="'messages'"),
    Case("chat-messages-empty", "POST", C, chat(), names="messages"),
    Case("chat-role-missing", "POST", C, chat({"content": "hi"}), names="messages.0.role"),
    Case("chat-role-number", "POST", C, chat({"role": 5, "content": "hi"}), names="messages.0.role"),
    Case(
        "chat-content-object", "POST", C, chat({"role": "user", "content": {"text": "hi"}}), names="messages.0.content"
    ),
    # -- wrong-typed stream --------------------------------------------------------------------
    Case("chat-stream-string", "POST", C, chat(USER, stream="yes"), names="'stream'"),
    Case("chat-stream-int", "POST", C, chat(USER, stream=1), names="'stream'"),
    Case("chat-stream-null", "POST", C, chat(USER, stream=None), names="'stream'"),
    Case(
        "chat-stream-options-string", "POST", C, chat(USER, stream=True, stream_options="x"), names="'stream_options'"
    ),
    # -- arrays where objects are expected, and other wrong types -------------------------------
    Case("search-array-body", "POST", S, j([]), names="'body'"),
    Case("ask-array-of-objects", "POST", A, j([{"question": "x"}]), names="'body'"),
    Case("chat-messages-object", "POST", C, j({"model": "kb", "messages": USER}), names="'messages'"),
    Case("search-filters-array", "POST", S, j({"query": "argo", "filters": [1, 2]}), names="'filters'"),
    Case("ask-history-object", "POST", A, j({"question": "argo", "history": {"role": "user"}}), names="'history'"),
    Case("ask-history-pairs", "POST", A, j({"question": "argo", "history": [["user", "hi"]]}), names="'history.0'"),
    Case("search-query-number", "POST", S, j({"query": 123}), names="'query'"),
    Case("ask-question-null", "POST", A, j({"question": None}), names="'question'"),
    Case("ask-question-blank", "POST", A, j({"question": "   "}), names="'question'"),
    Case(
        "search-query-too-long",
        "POST",
        S,
        j({"query": "x " * 3000}),
        type="query_too_long",
        names="serve.max_query_chars",
    ),
    Case("ask-unknown-field", "POST", A, j({"question": "argo", "temperature": 2}), names="'temperature'"),
    Case("search-body-string", "POST", S, j("argo"), names="'body'"),
    Case("search-empty-body", "POST", S, b"", type="invalid_content_type", names="body"),
    Case("search-empty-json-body", "POST", S, b"", headers={"Content-Type": "application/json"}, names="body"),
    Case("search-broken-json", "POST", S, b'{"query": "argo"', status=(400,), type="invalid_json", names="JSON"),
    Case("triage-logs-number", "POST", "/v1/triage", j({"logs": 5}), names="logs"),
    Case("reload-path-number", "POST", "/admin/reload", j({"path": 5}), names="'path'"),
    # -- duplicate keys ------------------------------------------------------------------------
    Case(
        "search-duplicate-query",
        "POST",
        S,
        b'{"query": "argo", "query": "podman"}',
        status=(400,),
        type="duplicate_key",
        names="'query'",
    ),
    Case(
        "chat-duplicate-content",
        "POST",
        C,
        b'{"messages": [{"role": "user", "content": "a", "content": "b"}]}',
        status=(400,),
        type="duplicate_key",
        names="'content'",
    ),
    # -- auth ----------------------------------------------------------------------------------
    Case(
        "search-no-key",
        "POST",
        S,
        j({"query": "argo"}),
        auth=False,
        status=(401,),
        type="authentication_error",
        names="Authorization",
    ),
    Case(
        "search-wrong-key",
        "POST",
        S,
        j({"query": "argo"}),
        headers={"Authorization": "Bearer nope"},
        status=(401,),
        type="authentication_error",
        names="Invalid bearer key",
    ),
    Case(
        "ask-basic-auth",
        "POST",
        A,
        j({"question": "argo"}),
        headers={"Authorization": "Basic dXNlcjpwdw=="},
        status=(401,),
        type="authentication_error",
        names="Bearer",
    ),
    Case(
        "atom-no-key",
        "GET",
        "/v1/atoms/x",
        auth=False,
        status=(401,),
        type="authentication_error",
        names="Authorization",
    ),
    # -- sizes and framing ---------------------------------------------------------------------
    Case(
        "search-declared-1gb",
        "POST",
        S,
        headers={"Content-Length": str(10**9)},
        status=(413,),
        type="request_too_large",
        names="serve.max_body_bytes",
    ),
    Case(
        "search-declared-30-digits",
        "POST",
        S,
        headers={"Content-Length": "9" * 30},
        status=(413, 400),
        type=None,
        names=None,
    ),
    Case(
        "search-body-over-limit",
        "POST",
        S,
        j({"query": "x" * 70_000}),
        status=(413,),
        type="request_too_large",
        names="serve.max_body_bytes",
    ),
    Case(
        "header-20kb",
        "GET",
        "/v1/models",
        headers={"X-Big": "a" * 20_000},
        status=(431,),
        type="headers_too_large",
        names="serve.max_header_bytes",
    ),
    Case(
        "headers-500",
        "GET",
        "/v1/models",
        headers={f"X-H{i}": "v" * 40 for i in range(500)},
        status=(431,),
        type="headers_too_large",
        names="serve.max_header_bytes",
    ),
    Case(
        "content-length-letters",
        "POST",
        S,
        j({"query": "argo"}),
        headers={"Content-Length": "abc"},
        status=(400,),
        type="invalid_http",
        names="the Content-Length header",
    ),
    Case(
        "content-length-and-chunked",
        "POST",
        S,
        raw=b"POST /v1/search HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + KEY.encode()
        + b"\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n",
        status=(400,),
        type="conflicting_framing",
        names="chunked",
    ),
    Case(
        "transfer-encoding-gzip",
        "POST",
        S,
        raw=b"POST /v1/search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nConnection: close\r\n\r\n",
        status=(400,),
        type="invalid_http",
        names="the Transfer-Encoding header",
    ),
    Case(
        "request-line-garbage",
        "GET",
        "/",
        raw=b"GARBAGE\r\n\r\n",
        status=(400,),
        type="invalid_http",
        names="the request line 'GARBAGE'",
    ),
    Case(
        "no-host-header",
        "GET",
        "/",
        raw=b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n",
        status=(400,),
        type="invalid_http",
        names="the Host header",
    ),
    Case(
        "header-with-nul",
        "GET",
        "/",
        raw=b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\nConnection: close\r\n\r\n",
        status=(400,),
        type="invalid_http",
        names="the header 'X-A'",
    ),
    Case(
        "header-name-with-space",
        "GET",
        "/",
        raw=b"GET /healthz HTTP/1.1\r\nHost: x\r\nX Bad: 1\r\nConnection: close\r\n\r\n",
        status=(400,),
        type="invalid_http",
        names="a header line ('X Bad: 1')",
    ),
    Case(
        "request-line-control-byte",
        "GET",
        "/",
        raw=b"GET /\x7f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        status=(400,),
        type="invalid_http",
        names="the request line 'GET /\\x7f HTTP/1.1'",
    ),
    Case(
        "content-length-twice-differing",
        "POST",
        S,
        raw=b"POST /v1/search HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n"
        b"Connection: close\r\n\r\n{}",
        status=(400,),
        type="invalid_http",
        names="the Content-Length header",
    ),
    Case(
        "chunked-over-limit",
        "POST",
        S,
        raw=b"POST /v1/search HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode() + b"\r\n"
        b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + b"".join(b"4000\r\n" + b"x" * 0x4000 + b"\r\n" for _ in range(5))
        + b"0\r\n\r\n",
        status=(413,),
        type="request_too_large",
        names="at least",
    ),
    # -- methods and paths ---------------------------------------------------------------------
    Case("brew-on-search", "BREW", S, status=(405,), type="method_not_allowed", names="BREW"),
    Case("delete-on-ask", "DELETE", A, status=(405,), type="method_not_allowed", names="POST"),
    Case("get-on-chat", "GET", C, status=(405,), type="method_not_allowed", names="GET"),
    Case("unknown-route", "GET", "/v2/everything", status=(404,), type="not_found", names="/v2/everything"),
    Case("path-traversal", "GET", "/v1/atoms/..%2f..%2fetc%2fpasswd", status=(404,), type="not_found"),
    Case("atom-id-5000", "GET", "/v1/atoms/" + "a" * 5000, status=(404,), type="not_found", names="No atom"),
    # -- query parameters (no route takes any: they are ignored, never a 5xx) -------------------
    Case("models-bad-percent", "GET", "/v1/models?x=%ZZ&%ff=1", status=(200,), type=None),
    Case("search-query-in-url", "POST", S + "?k=-5&query=%00", j({"query": "argo", "k": "many"}), names="'k'"),
    Case(
        "metrics-repeated-params",
        "GET",
        "/metrics?" + "&".join(f"a{i}=1" for i in range(300)),
        status=(200,),
        type=None,
    ),
]


def route_method_cases(paths: dict[str, dict]) -> list[Case]:
    """HEAD and OPTIONS on every route of the app's OpenAPI document (path templates filled in)."""
    cases = []
    for template, ops in sorted(paths.items()):
        path = template.replace("{atom_id}", "no-such-atom")
        for method in ("HEAD", "OPTIONS"):
            if method.lower() in ops:
                continue
            cases.append(
                Case(
                    f"{method.lower()}-{template}",
                    method,
                    path,
                    status=(405,),
                    type="method_not_allowed",
                    names=method if method != "HEAD" else None,
                )
            )
    return cases
