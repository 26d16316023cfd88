"""A seeded request generator from the app's OpenAPI document: schema-shaped bodies, then mutated.

Every operation's request body is built from its JSON Schema (required and optional fields with
values of the declared type), then one mutation is applied: a field dropped, a wrong type, null,
a huge or odd string, a deep or wide value, an extra key, broken JSON, bytes that are not UTF-8,
or a random method, path, header or content type. Used by tests/hostile/test_hostile_http.py (a few
hundred requests) and bench/http_fuzz.py (10,000). The same seed gives the same requests.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

from tests.hostile.kbserve import request_bytes, send_raw

STRINGS = [
    "",
    " ",
    "argo cd sync",
    "\u202e\u0000",
    "\ud7ff\ue000\U0010ffff",
    "' OR 1=1 --",
    "../../etc/passwd",
    "%s%n%x",
    "<script>alert(1)</script>",
    "\u0301" * 50,
    "x" * 2100,
]
VALUES: list[Any] = [None, True, 0, -1, 2**63, 1e308, -0.0, "", [], {}, [None], {"": None}, "null"]
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "BREW", "M-SEARCH"]
CONTENT_TYPES = [
    "application/json",
    "text/plain",
    "application/json; charset=utf-16",
    "",
    "*/*",
    "application/x-ndjson",
]


class Schema:
    """Resolves ``$ref`` in an OpenAPI document and builds instances of a schema."""

    def __init__(self, doc: dict, rng: random.Random) -> None:
        self.doc = doc
        self.rng = rng

    def resolve(self, schema: dict) -> dict:
        while "$ref" in schema:
            node: Any = self.doc
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def instance(self, schema: dict, depth: int = 0) -> Any:
        schema = self.resolve(schema)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self.instance(self.rng.choice(schema[key]), depth + 1)
        if "allOf" in schema:
            return self.instance(schema["allOf"][0], depth + 1)
        kind = schema.get("type")
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        if kind == "object" or "properties" in schema:
            props = schema.get("properties", {})
            required = set(schema.get("required", []))
            return {
                name: self.instance(sub, depth + 1)
                for name, sub in props.items()
                if name in required or (depth < 3 and self.rng.random() < 0.5)
            }
        if kind == "array":
            items = schema.get("items", {})
            return [self.instance(items, depth + 1) for _ in range(self.rng.randint(0, 2 if depth < 3 else 0))]
        if kind == "integer":
            return self.rng.randint(schema.get("minimum", 0), min(schema.get("maximum", 20), 20))
        if kind == "number":
            return self.rng.random()
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "string":
            return self.rng.choice(STRINGS[:3])
        return self.rng.choice(VALUES)


def operations(doc: dict) -> list[tuple[str, str, dict | None]]:
    """(method, path, body schema or None) for every operation; path templates filled in."""
    ops = []
    for template, methods in doc.get("paths", {}).items():
        path = template.replace("{atom_id}", "argocd-i-forgot-the-admin-password-how-do-i-reset-it")
        for method, op in methods.items():
            content = (op.get("requestBody") or {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            ops.append((method.upper(), path, schema))
    return sorted(ops, key=lambda o: (o[1], o[0]))


def _mutate_value(rng: random.Random, body: Any) -> Any:
    if not isinstance(body, dict) or not body:
        return rng.choice(VALUES + [body])
    body = dict(body)
    key = rng.choice(sorted(body))
    choice = rng.randrange(7)
    if choice == 0:
        del body[key]
    elif choice == 1:
        body[key] = rng.choice(VALUES)
    elif choice == 2:
        body[key] = rng.choice(STRINGS)
    elif choice == 3:
        value: Any = rng.choice(STRINGS)
        for _ in range(rng.randint(10, 60)):
            value = rng.choice([[value], {"a": value}])
        body[key] = value
    elif choice == 4:
        body[key] = [rng.choice(VALUES) for _ in range(rng.randint(50, 2000))]
    elif choice == 5:
        body["x" + str(rng.randrange(100))] = rng.choice(VALUES)
    else:
        body[key] = {"role": rng.choice(["user", "system", "tool", ""]), "content": rng.choice(VALUES + STRINGS)}
    return body


def _encode(rng: random.Random, body: Any) -> bytes:
    data = json.dumps(body).encode()
    roll = rng.random()
    if roll < 0.05:
        return data[: rng.randrange(len(data) + 1)]  # cut short
    if roll < 0.10:
        return data.replace(b'"', b"\xff", 1)  # not UTF-8
    if roll < 0.13:
        return data.replace(b"}", b', "k": ' + b"9" * rng.randint(20, 400) + b"}", 1)
    return data


def generate(doc: dict, n: int, seed: int = 17) -> list[bytes]:
    """``n`` raw requests (each on its own connection) over the document's operations."""
    rng = random.Random(seed)
    schema = Schema(doc, rng)
    ops = operations(doc)
    out = []
    for _ in range(n):
        method, path, body_schema = rng.choice(ops)
        body = schema.instance(body_schema) if body_schema else None
        headers: dict[str, str] = {}
        roll = rng.random()
        if roll < 0.1:
            method = rng.choice(METHODS)
        elif roll < 0.15:
            path = "/" + "/".join(rng.choice(["v1", "..", "%2e", "admin", "x" * 300, "", "atoms"]) for _ in range(3))
        elif roll < 0.2:
            headers["X-Fuzz"] = "y" * rng.choice([10, 4000, 20000])
        if body_schema and rng.random() < 0.8:
            body = _mutate_value(rng, body)
        data = _encode(rng, body) if body is not None else b""
        ctype = rng.choice(CONTENT_TYPES) if rng.random() < 0.1 else "application/json"
        out.append(request_bytes(method, path, data, headers, auth=rng.random() > 0.05, content_type=ctype or None))
    return out


def run(port: int, requests: list[bytes], timeout: float = 60.0) -> tuple[Counter, list[tuple[bytes, bytes]]]:
    """Send each request; (count by status, [(request head, reply)] for every 5xx or non-JSON 4xx)."""
    counts: Counter = Counter()
    bad: list[tuple[bytes, bytes]] = []
    for data in requests:
        head_only = data.startswith(b"HEAD ")
        reply = send_raw(port, data, timeout=timeout, head_only=head_only)
        counts[reply.status] += 1
        non_json = 400 <= reply.status < 500 and "json" not in reply.headers.get("content-type", "")
        if reply.status >= 500 or reply.status == 0 or non_json:
            bad.append((data[:300], reply.body[:300] or str(reply.status).encode()))
    return counts, bad
