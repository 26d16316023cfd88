"""Read-only access to a system's declared sources, each call with an output budget.

Every function takes the workspace root and a loaded ``SystemManifest`` and returns plain data.
Budgets: a result that was cut says so (``truncated``) and carries a ``handle`` (or the next
``offset``) to fetch more. Nothing runs a shell, writes, or reaches a path the manifest does
not allow.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from pipeline.errors import InputError, NotFoundError
from pipeline.ops.manifest import SystemManifest, log_files, resolve_path
from pipeline.ops.records import RANK, parse_line, time_key

MAX_LINE_CHARS = 1000


def _source(manifest: SystemManifest, name: str | None):
    if not manifest.logs:
        raise NotFoundError(
            f"system {manifest.name!r} declares no logs", f"add a logs: entry to systems/{manifest.name}.yaml"
        )
    if name is None:
        return manifest.logs
    hit = [s for s in manifest.logs if s.name == name]
    if not hit:
        raise NotFoundError(f"no log source {name!r}", f"sources: {', '.join(s.name for s in manifest.logs)}")
    return hit


def make_handle(file: Path, line: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([str(file), line]).encode()).decode().rstrip("=")


def read_handle(handle: str) -> tuple[Path, int]:
    try:
        file, line = json.loads(base64.urlsafe_b64decode(handle + "=" * (-len(handle) % 4)))
        return Path(file), int(line)
    except (ValueError, TypeError):
        raise InputError(f"not a log handle: {handle!r}", "pass a handle that search_logs returned") from None


def search_logs(
    root: Path,
    manifest: SystemManifest,
    *,
    query: str = "",
    since: Any = None,
    level: str | None = None,
    limit: int = 50,
    source: str | None = None,
    budget_chars: int = 8000,
) -> dict[str, Any]:
    """Lines of the system's logs that contain ``query`` (case-insensitive; a /regex/ too), newest files last."""
    rx = _query_rx(query)
    want = RANK.get(level, None) if level else None
    hits: list[dict[str, Any]] = []
    used = 0
    truncated = False
    for src in _source(manifest, source):
        pattern = re.compile(src.pattern) if src.pattern else None
        for path in log_files(root, manifest, src):
            with path.open(encoding="utf-8", errors="replace") as fh:
                for number, raw in enumerate(fh, 1):
                    line = raw.rstrip("\r\n")
                    if rx and not rx.search(line):
                        continue
                    rec = parse_line(line, pattern, src.format)
                    if want is not None and RANK.get(rec.level or "", 9) > want:
                        continue
                    if since is not None:
                        t = time_key(rec.time)
                        if t is not None and t < since:
                            continue
                    text = line[:MAX_LINE_CHARS]
                    if len(hits) >= limit or used + len(text) > budget_chars:
                        truncated = True
                        break
                    used += len(text)
                    hits.append({"file": str(path), "line_number": number, "time": rec.time, "level": rec.level,
                                 "line": text, "handle": make_handle(path, number)})  # fmt: skip
            if truncated:
                break
    return {"system": manifest.name, "hits": hits, "truncated": truncated,
            "note": "more lines match: narrow the query, raise limit or pass since" if truncated else ""}  # fmt: skip


def _query_rx(query: str) -> re.Pattern[str] | None:
    if not query:
        return None
    if len(query) > 2 and query.startswith("/") and query.endswith("/"):
        try:
            return re.compile(query[1:-1], re.I)
        except re.error as exc:
            raise InputError(f"bad regex {query}: {exc}", "use a plain substring or a valid /regex/") from None
    return re.compile(re.escape(query), re.I)


def log_context(
    root: Path, manifest: SystemManifest, handle: str, *, before: int = 10, after: int = 10, budget_chars: int = 8000
) -> dict[str, Any]:
    """The lines around a search hit; a cut says so and gives the handle to continue from."""
    path, line = read_handle(handle)
    allowed = {p for src in manifest.logs for p in log_files(root, manifest, src)}
    path = resolve_path(root, manifest, str(path))
    if path not in allowed:
        raise InputError(
            "that handle points outside this system's logs", "use a handle from search_logs of this system"
        )
    lo, hi = max(1, line - max(0, before)), line + max(0, after)
    out, used, next_handle = [], 0, None
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, raw in enumerate(fh, 1):
            if number < lo:
                continue
            if number > hi:
                break
            text = raw.rstrip("\r\n")[:MAX_LINE_CHARS]
            if used + len(text) > budget_chars:
                next_handle = make_handle(path, number)
                break
            used += len(text)
            out.append({"line_number": number, "line": text})
    return {"file": str(path), "lines": out, "truncated": next_handle is not None, "next_handle": next_handle}


def read_config(
    root: Path, manifest: SystemManifest, path: str, *, offset: int = 0, budget_chars: int = 8000
) -> dict[str, Any]:
    """A file (or a folder listing) under one of the system's config folders."""
    for cfg in manifest.configs:
        base = resolve_path(root, manifest, cfg.path)
        target = resolve_path(root, manifest, str(base / path)) if path not in ("", ".") else base
        if target != base and base not in target.parents:
            continue
        if target.is_dir():
            entries = sorted(p.name + ("/" if p.is_dir() else "") for p in target.iterdir())
            return {"config": cfg.name, "path": str(target), "entries": entries[:500], "truncated": len(entries) > 500}
        if target.is_file():
            data = target.read_text(encoding="utf-8", errors="replace")
            chunk = data[offset : offset + budget_chars]
            end = offset + len(chunk)
            return {"config": cfg.name, "path": str(target), "text": chunk, "truncated": end < len(data),
                    "next_offset": end if end < len(data) else None}  # fmt: skip
    names = ", ".join(f"{c.name} ({c.path})" for c in manifest.configs) or "none declared"
    raise NotFoundError(f"{path!r} is in none of the system's config folders", f"config folders: {names}")


def query_metric(manifest: SystemManifest, name: str, range_: str = "1h", *, step: str | None = None,
                 timeout: float = 10.0, budget_chars: int = 8000) -> dict[str, Any]:  # fmt: skip
    """A named PromQL query over the last ``range_`` (Prometheus HTTP API ``query_range``)."""
    import time
    import urllib.error
    import urllib.parse
    import urllib.request

    m = manifest.metrics
    if m is None:
        raise NotFoundError(f"system {manifest.name!r} declares no metrics", "add metrics: {base_url, queries}")
    if name not in m.queries:
        raise NotFoundError(f"no metric query named {name!r}", f"named queries: {', '.join(m.queries)}")
    seconds = _seconds(range_)
    end = time.time()
    step = step or f"{max(1, seconds // 60)}s"
    params = urllib.parse.urlencode({"query": m.queries[name], "start": end - seconds, "end": end, "step": step})
    url = f"{m.base_url.rstrip('/')}/api/v1/query_range?{params}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - the manifest's declared URL
            body = json.loads(resp.read(2_000_000))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise InputError(
            f"metrics server {m.base_url} did not answer: {exc}", "check metrics.base_url and that it is up"
        ) from None
    series = []
    used, truncated = 0, False
    for s in body.get("data", {}).get("result", []):
        values = s.get("values", [])
        item = {"metric": s.get("metric", {}), "values": values}
        size = len(json.dumps(item))
        if used + size > budget_chars:
            keep = max(0, (budget_chars - used) // 30)
            item["values"] = values[-keep:] if keep else []
            truncated = True
        used += len(json.dumps(item))
        series.append(item)
        if truncated:
            break
    return {"name": name, "query": m.queries[name], "range": range_, "status": body.get("status"),
            "series": series, "truncated": truncated}  # fmt: skip


def _seconds(text: str) -> int:
    mt = re.fullmatch(r"\s*(\d+)\s*([smhdw])\s*", text or "")
    if not mt:
        raise InputError(f"range {text!r} is not a duration", "use 15m, 1h, 24h or 7d")
    return int(mt.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[mt.group(2)]


def query_records(root: Path, manifest: SystemManifest, name: str, params: dict[str, Any] | None = None,
                  *, limit: int = 200, budget_chars: int = 8000) -> dict[str, Any]:  # fmt: skip
    """A named, parameterised SELECT over the system's run records (read-only connection)."""
    r = manifest.records
    if r is None:
        raise NotFoundError(f"system {manifest.name!r} declares no records", "add records: {url, queries}")
    if name not in r.queries:
        raise NotFoundError(f"no records query named {name!r}", f"named queries: {', '.join(r.queries)}")
    q = r.queries[name]
    params = dict(params or {})
    missing = [p for p in q.params if p not in params]
    extra = [p for p in params if p not in q.params]
    if missing or extra:
        raise InputError(f"{name} takes {q.params}; missing {missing}, unknown {extra}", f"pass params for {q.params}")
    columns, rows = _run_sql(root, manifest, r.url, q.sql, params, limit + 1)
    out_rows, used = [], 0
    for row in rows[:limit]:
        item = dict(
            zip(columns, [v if isinstance(v, (int, float, str, type(None))) else str(v) for v in row], strict=False)
        )
        used += len(json.dumps(item, default=str))
        if used > budget_chars:
            break
        out_rows.append(item)
    truncated = len(out_rows) < len(rows)
    return {"name": name, "columns": columns, "rows": out_rows, "truncated": truncated,
            "note": f"showing {len(out_rows)} rows; narrow the query's parameters for the rest" if truncated else ""}  # fmt: skip


def _run_sql(root: Path, manifest: SystemManifest, url: str, sql: str, params: dict[str, Any], limit: int):
    scheme, _, rest = url.partition("://")
    if scheme in ("sqlite", "duckdb"):
        path = resolve_path(root, manifest, rest[1:] if rest.startswith("/") and not rest.startswith("//") else rest)
        if not path.is_file():
            raise NotFoundError(f"records database {path} does not exist", "check records.url in the manifest")
    if scheme == "sqlite":
        import sqlite3

        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            cur = con.execute(sql, params)
            return [d[0] for d in cur.description or []], cur.fetchmany(limit)
        except sqlite3.Error as exc:
            raise _query_failed(exc) from None
        finally:
            con.close()
    if scheme == "duckdb":
        from pipeline.index.duck import read_query

        return read_query(path, re.sub(r":(\w+)", r"$\1", sql), params, limit)
    import psycopg  # lazily: the postgres extra

    try:
        with psycopg.connect(url, autocommit=False) as pg:
            pg.read_only = True
            pcur = pg.execute(re.sub(r"(?<!:):(\w+)", r"%(\1)s", sql), params)
            return [d.name for d in pcur.description or []], pcur.fetchmany(limit)
    except psycopg.Error as exc:  # a refused write (read-only transaction), a missing table, a server gone
        raise _query_failed(exc) from None


def _query_failed(exc: Exception) -> InputError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(
        f"the records query failed: {first}",
        "check the query's SQL in the manifest (records are read-only: writes are refused) and the database",
    )
