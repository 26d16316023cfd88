"""``systems/<name>.yaml``: the read-only sources of the system the knowledge is about.

Sources are declared, never discovered: log files (globs), Prometheus (a base URL and *named*
PromQL queries), run records (a database URL and *named*, parameterised SQL) and config folders.
Paths are relative to the workspace; a path outside it is allowed only under one of the
manifest's ``allowed_roots``. Nothing here runs a shell or writes anything.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.errors import InputError, NotFoundError

BUILTIN_SYSTEM = "kb"  # kb itself: its run log, check findings, /metrics and serve logs


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LogSource(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    paths: list[str] = Field(min_length=1, description="Globs, relative to the workspace or under allowed_roots.")
    format: Literal["auto", "json", "regex"] = "auto"
    pattern: str | None = Field(None, description="format: regex - named groups time, level, message.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"pattern does not compile: {exc}") from None
        return v


class MetricsSource(_Strict):
    base_url: str = Field(pattern=r"^https?://", description="Prometheus HTTP API base, e.g. http://127.0.0.1:9090")
    queries: dict[str, str] = Field(min_length=1, description="name -> PromQL")


class RecordQuery(_Strict):
    sql: str = Field(description="One SELECT with named parameters (:name).")
    params: list[str] = Field(default_factory=list)

    @field_validator("sql")
    @classmethod
    def _select_only(cls, v: str) -> str:
        if not re.match(r"^\s*(select|with)\b", v, re.I) or ";" in v.strip().rstrip(";"):
            raise ValueError("must be a single SELECT (or WITH ... SELECT) statement")
        return v


class RecordsSource(_Strict):
    url: str = Field(
        pattern=r"^(sqlite|duckdb|postgresql|postgres)://", description="sqlite:///p, duckdb:///p, postgresql://"
    )
    queries: dict[str, RecordQuery] = Field(min_length=1)


class ConfigSource(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    path: str


class SystemManifest(_Strict):
    """One system kb can look at (read-only)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = ""
    allowed_roots: list[str] = Field(
        default_factory=list, description="Absolute folders outside the workspace that may be read."
    )
    logs: list[LogSource] = Field(default_factory=list)
    metrics: MetricsSource | None = None
    records: RecordsSource | None = None
    configs: list[ConfigSource] = Field(default_factory=list)


def systems_dir(workspace_root: Path) -> Path:
    return Path(workspace_root) / "systems"


def manifest_paths(workspace_root: Path) -> list[Path]:
    d = systems_dir(workspace_root)
    return sorted(d.glob("*.yaml")) if d.is_dir() else []


def read_manifest(path: Path, max_bytes: int = 262_144) -> SystemManifest:
    """Load and validate one manifest (size-capped safe YAML)."""
    from pipeline import safeload

    if path.stat().st_size > max_bytes:
        raise InputError(f"{path} is larger than {max_bytes} bytes", "a manifest names sources; it holds no data")
    # the one safe loading policy (aliases, expansion, depth, numbers; the error names the line)
    data = safeload.read_yaml(path, hint="Fix the manifest at that line (kb check shows every problem).") or {}
    try:
        m = SystemManifest.model_validate(data)
    except ValidationError as exc:
        e = exc.errors()[0]
        where = ".".join(str(p) for p in e["loc"]) or "(top)"
        raise InputError(f"{path}: {where}: {e['msg']}", "see schemas/system.json for the manifest's fields") from None
    if m.name != path.stem:
        raise InputError(f"{path}: name {m.name!r} differs from the file name", f"set name: {path.stem}")
    return m


def load_system(workspace_root: Path, name: str, max_bytes: int = 262_144) -> SystemManifest:
    if name == BUILTIN_SYSTEM and not (systems_dir(workspace_root) / f"{name}.yaml").is_file():
        return kb_manifest(workspace_root)
    path = systems_dir(workspace_root) / f"{name}.yaml"
    if not path.is_file():
        known = [p.stem for p in manifest_paths(workspace_root)] + [BUILTIN_SYSTEM]
        raise NotFoundError(f"no system named {name!r}", f"systems here: {', '.join(known)} (add systems/{name}.yaml)")
    return read_manifest(path, max_bytes)


def resolve_path(workspace_root: Path, manifest: SystemManifest, path: str) -> Path:
    """A declared path, made absolute; refused when it leaves the workspace and every allowed root."""
    root = Path(workspace_root).resolve()
    p = Path(path).expanduser()
    p = (p if p.is_absolute() else root / p).resolve()
    roots = [root] + [Path(r).expanduser().resolve() for r in manifest.allowed_roots]
    if not any(p == r or r in p.parents for r in roots):
        raise InputError(
            f"{path} is outside the workspace and the manifest's allowed_roots",
            f"add its folder to allowed_roots in systems/{manifest.name}.yaml if kb may read it",
        )
    return p


def log_files(workspace_root: Path, manifest: SystemManifest, source: LogSource) -> list[Path]:
    """The files a log source's globs match now (sorted), each checked against the roots."""
    import glob

    root = Path(workspace_root)
    out: set[Path] = set()
    for pattern in source.paths:
        base = pattern if Path(pattern).expanduser().is_absolute() else str(root / pattern)
        for hit in glob.glob(str(Path(base).expanduser()), recursive=True):
            p = Path(hit)
            if p.is_file():
                out.add(resolve_path(root, manifest, str(p)))
    return sorted(out)


SCHEMA_FILE = "system.json"


def json_schema_text() -> str:
    """The manifest's JSON Schema, as ``kb schemas`` writes it to ``schemas/system.json``."""
    import json

    schema = SystemManifest.model_json_schema(mode="validation")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"kb/{SCHEMA_FILE}", **schema}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schema(folder: Path) -> Path | None:
    """Write ``system.json`` into ``folder``; returns it when it changed."""
    from pipeline.workspace import atomic_write_text

    path = Path(folder) / SCHEMA_FILE
    text = json_schema_text()
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return None
    atomic_write_text(path, text)
    return path


# kb as a system of its own (see pipeline/ops/selfsystem.py for what it reads) ------------------

_QUERIES = {
    "last_runs": RecordQuery(
        sql="SELECT run_id, started, finished, status, backend, model, atoms_written, requests, cost_usd "
        "FROM runs ORDER BY started DESC LIMIT :limit",
        params=["limit"],
    ),
    "failed_requests": RecordQuery(
        sql="SELECT run_id, requested_at, interview, window_index, status, retries FROM requests "
        "WHERE status <> 'ok' ORDER BY requested_at DESC LIMIT :limit",
        params=["limit"],
    ),
}


def kb_manifest(workspace_root: Path) -> SystemManifest:
    root = Path(workspace_root)
    runs = root / ".kb" / "runs.duckdb"
    return SystemManifest(
        name="kb",
        description="kb itself: its logs, run log, last check report and /metrics",
        logs=[LogSource(name="kb", paths=[".kb/logs/*.log", ".kb/logs/**/*.log"], format="auto")],
        records=RecordsSource(url=f"duckdb:///{runs}", queries=_QUERIES) if runs.is_file() else None,
        metrics=MetricsSource(
            base_url=os.environ.get("KB_OPS_KB_PROMETHEUS", "http://127.0.0.1:9090"),
            queries={
                "request_rate": "sum by (route, status) (rate(kb_requests_total[5m]))",
                "uncertain_answers": 'sum(rate(kb_answers_total{uncertain="true"}[1h]))',
            },
        ),
        configs=[ConfigSource(name="state", path=".kb/state")],
    )
