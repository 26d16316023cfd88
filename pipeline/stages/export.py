"""``kb export``: the atoms as one DuckDB bundle (atoms, FAQ, sources, passages, vectors, manifest).

Archived atoms are never exported; ``statuses`` narrows further (``validated`` for production).
Passages are embedded through a cache keyed by sha256(model id + text) under ``.kb/``, so a
re-export embeds only passages whose text changed. The file is written to a temp path and
renamed (a crash leaves no half bundle); the manifest is also written beside it as JSON.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import __version__
from pipeline import atoms as atom_files
from pipeline.config import Settings, over_budget
from pipeline.errors import ConfigError, InputError
from pipeline.index.bundle import BUNDLE_SCHEMA_VERSION, BundleContent, manifest_for, write_bundle
from pipeline.index.cache import EmbeddingCache, cache_key
from pipeline.index.lexical import tokenize
from pipeline.index.passages import Passage, atom_passages
from pipeline.models import STATUSES, Atom, EmbeddingInfo, Manifest
from pipeline.reporting import Reporter
from pipeline.workspace import Workspace, atomic_path, atomic_write_json, clean_leftovers, confine, sha256_bytes

EXPORTABLE = tuple(s for s in STATUSES if s != "archived")


@dataclass
class ExportReport:
    path: Path | None
    atoms: int = 0
    passages: int = 0
    embedded: int = 0
    cached: int = 0
    archived: int = 0
    excluded: int = 0
    seconds: float = 0.0
    skipped: bool = False
    manifest: Manifest | None = None

    def __str__(self) -> str:
        if self.skipped:
            return f"bundle {self.path} is fresh (atoms unchanged)"
        return (
            f"{self.atoms} atoms, {self.passages} passages ({self.embedded} embedded, {self.cached} from cache) "
            f"-> {self.path} in {self.seconds:.1f}s"
        )


def parse_statuses(values: list[str] | None) -> tuple[str, ...]:
    """``--status`` values (repeatable, comma lists allowed) -> statuses; default: all but archived."""
    chosen: list[str] = []
    for value in values or []:
        chosen += [v.strip() for v in value.split(",") if v.strip()]
    if not chosen:
        return EXPORTABLE
    for s in chosen:
        if s == "archived":
            raise ConfigError("Archived atoms are never exported.", f"Choose among: {', '.join(EXPORTABLE)}.")
        if s not in EXPORTABLE:
            raise ConfigError(f"Unknown status '{s}' for --status.", f"Choose among: {', '.join(EXPORTABLE)}.")
    return tuple(s for s in EXPORTABLE if s in chosen)


def run(
    settings: Settings,
    workspace: Workspace,
    reporter: Reporter,
    *,
    out: Path | None = None,
    statuses: list[str] | tuple[str, ...] | None = None,
    embedder: Any | None = None,
    force: bool = False,
) -> ExportReport:
    """Export the workspace's atoms with ``statuses`` to ``out`` (default dist/kb-<version>.duckdb)."""
    started = time.perf_counter()
    clean_leftovers(workspace, reporter)
    chosen = parse_statuses(list(statuses) if statuses else None)
    fresh = workspace.freshness("export")
    inputs = _inputs(settings, workspace, chosen, out)
    previous = fresh.recorded("bundle-output") or {}
    if not force and fresh.is_fresh("bundle", inputs) and previous.get("path") and Path(previous["path"]).is_file():
        path = Path(previous["path"])
        reporter.skip(f"export: atoms unchanged since {workspace.relative(path)} was written")
        return ExportReport(
            path=path, skipped=True, atoms=previous.get("atoms", 0), passages=previous.get("passages", 0)
        )

    atoms, archived, excluded = _read_atoms(workspace, chosen, settings)
    if archived:
        reporter.info(f"export: {archived} archived atom(s) left out")
    if excluded:
        reporter.info(f"export: {excluded} atom(s) with a status other than {', '.join(chosen)} left out")
    if not atoms:
        reporter.warn("export: no atoms to export; the bundle will be empty")

    if embedder is None:
        from pipeline.backends.embed import load_embedder

        embedder = load_embedder(settings)
    content, passages = build_content(workspace, atoms, embedder)
    vectors, embedded, cached = embed_passages(workspace, passages, embedder, reporter, settings.embed.batch_size)
    content.vectors = vectors

    embedding = EmbeddingInfo(model=embedder.model_id, dim=int(embedder.dim), normalized=True)
    manifest = manifest_for(
        content, embedding, kb_version=__version__, statuses=chosen, git_commit=_git_commit(workspace.root)
    )
    name = f"kb-{manifest.created:%Y%m%d}-{manifest.checksum[:8]}.duckdb"
    path = Path(out) if out else workspace.dist_dir / name
    if out and (path.is_dir() or str(out).endswith(("/", "\\"))):
        path = path / name  # --out FOLDER: the versioned name inside it
    with atomic_path(path) as tmp:  # disk_guard inside: a full disk is Error/Hint naming the path and free space
        write_bundle(tmp, content, manifest)
    atomic_write_json(sidecar(path), json.loads(manifest.model_dump_json()))
    report = ExportReport(
        path=path,
        atoms=len(content.atoms),
        passages=len(content.passages),
        embedded=embedded,
        cached=cached,
        archived=archived,
        excluded=excluded,
        seconds=time.perf_counter() - started,
        manifest=manifest,
    )
    fresh.record("bundle", inputs)
    fresh.record("bundle-output", {"path": str(path), "atoms": report.atoms, "passages": report.passages})
    return report


def run_all(settings: Settings, workspace: Workspace, reporter: Reporter, force: bool = False) -> ExportReport:
    """``kb run`` step: export every non-archived atom to the default path (skipped when fresh)."""
    return run(settings, workspace, reporter, force=force)


def sidecar(path: Path) -> Path:
    """``dist/kb-X.duckdb`` -> ``dist/kb-X.manifest.json``."""
    return path.with_name(re.sub(r"\.duckdb$", "", path.name) + ".manifest.json")


# ---------------------------------------------------------------------------------------------


def _inputs(settings: Settings, workspace: Workspace, statuses: tuple[str, ...], out: Path | None) -> dict[str, Any]:
    return {
        "atoms": {workspace.relative(p): sha256_bytes(p.read_bytes()) for p in workspace.atom_files()},
        "transcripts": {
            i: sha256_bytes(t.read_bytes())
            for i in workspace.interview_ids()
            if (t := workspace.transcript_json(i)).is_file()
        },
        "statuses": list(statuses),
        "embed": settings.embed.model_dump(mode="json"),
        "schema": BUNDLE_SCHEMA_VERSION,
        "kb": __version__,
        "out": str(out) if out else None,
    }


def _read_atoms(workspace: Workspace, statuses: tuple[str, ...], settings: Settings) -> tuple[list[Atom], int, int]:
    atoms: list[Atom] = []
    seen: dict[str, str] = {}
    archived = excluded = 0
    for path in workspace.atom_files():
        check_atom_file(workspace, path, settings)
        try:
            atom = atom_files.read(path)
        except InputError as exc:
            raise InputError(
                exc.message, "Fix the atom (run 'kb check' for every problem), then export again."
            ) from None
        rel = workspace.relative(path)
        words = atom_files.word_count(atom.body)
        if words > settings.check.hard_cap_words:  # what `kb check` flags as over-cap (an error)
            raise InputError(
                f"the body has {words:,} words, above the hard cap check.hard_cap_words = {settings.check.hard_cap_words:,}",
                "Split it into atoms of one screen each (run 'kb check' for every problem), then export again.",
                path=rel,
            )
        if atom.meta.id in seen:
            raise InputError(
                f"atom id '{atom.meta.id}' is used twice (also in {seen[atom.meta.id]})",
                "Atom ids are file names and must be unique across types: rename one of the files and its id.",
                path=rel,
            )
        seen[atom.meta.id] = rel
        atom.path = rel
        if atom.meta.status == "archived":
            archived += 1
        elif atom.meta.status not in statuses:
            excluded += 1
        else:
            atoms.append(atom)
    return atoms, archived, excluded


def check_atom_file(workspace: Workspace, path: Path, settings: Settings) -> None:
    """Refuse what ``kb check`` flags before reading it: a symlink leaving the workspace, an oversized file."""
    confine(workspace, path, allowed_roots=settings.allowed_roots, what="atom")
    size = path.stat().st_size
    if size > settings.limits.max_atom_bytes:
        raise over_budget(
            "the atom's size in bytes", size, "limits.max_atom_bytes", settings.limits.max_atom_bytes,
            path=workspace.relative(path),
        )  # fmt: skip


def build_content(workspace: Workspace, atoms: list[Atom], embedder: Any) -> tuple[BundleContent, list[Passage]]:
    """Rows of every bundle table (vectors still empty) and the passages to embed, in id order."""
    content = BundleContent()
    passages: list[Passage] = []
    count = getattr(embedder, "count_tokens", None)
    max_tokens = int(getattr(embedder, "max_tokens", 256) or 256)
    for atom in sorted(atoms, key=lambda a: a.meta.id):
        meta = atom.meta
        data = meta.model_dump(mode="json", exclude_none=True)
        sources = data.get("sources", [])
        content.atoms.append(
            (
                meta.id,
                meta.type,
                meta.status,
                meta.title,
                meta.summary,
                list(meta.tags),
                json.dumps(data, ensure_ascii=False),
                atom.body,
                atom.path,
            )
        )
        content.faq += [(meta.id, n, p.question, p.answer) for n, p in enumerate(atom.faq)]
        content.sources += [(meta.id, n, json.dumps(s, ensure_ascii=False)) for n, s in enumerate(sources)]
        passages += atom_passages(atom, count, max_tokens)
    content.segments = cited_segments(workspace, content.sources)
    tokens = tokenize([p.search_text for p in passages])
    per_atom: dict[str, int] = {}
    for pid, (p, toks) in enumerate(zip(passages, tokens, strict=True)):
        ordinal = per_atom.get(p.atom_id, 0)
        per_atom[p.atom_id] = ordinal + 1
        content.passages.append((pid, p.atom_id, ordinal, p.kind, p.heading, p.part, p.text, p.search_text, list(toks)))
    return content, passages


#: Transcript segments kept on either side of a cited range, so an excerpt reads in context.
CONTEXT_SEGMENTS = 1


def cited_segments(workspace: Workspace, sources: list[tuple]) -> list[tuple]:
    """Rows of the ``segments`` table: every transcript segment an interview citation overlaps,
    plus ``CONTEXT_SEGMENTS`` on either side. Interviews without a transcript.json are skipped
    (their citations still carry the quote)."""
    from pipeline.transcripts import store

    ranges: dict[str, list[tuple[float, float]]] = {}
    for _, _, raw in sources:
        src = json.loads(raw)
        if src.get("interview") and src.get("start") is not None:
            start = float(src["start"])
            ranges.setdefault(str(src["interview"]), []).append((start, float(src.get("end") or start)))
    rows: list[tuple] = []
    for interview, spans in sorted(ranges.items()):
        path = workspace.transcript_json(interview)
        if not path.is_file():
            continue
        transcript = store.read(path, workspace.relative(path))
        speakers = {s.id: s for s in transcript.speakers}
        segs = transcript.segments
        keep: set[int] = set()
        for i, seg in enumerate(segs):
            if any(seg.end > lo and seg.start < hi or seg.start == lo for lo, hi in spans):
                keep.update(range(max(0, i - CONTEXT_SEGMENTS), min(len(segs), i + CONTEXT_SEGMENTS + 1)))
        for i in sorted(keep):
            seg = segs[i]
            who = speakers.get(seg.speaker)
            rows.append(
                (
                    interview,
                    seg.id,
                    float(seg.start),
                    float(seg.end),
                    seg.speaker,
                    who.name if who else seg.speaker,
                    who.role if who else "unknown",
                    seg.text,
                )
            )
    return rows


def embed_passages(
    workspace: Workspace, passages: list[Passage], embedder: Any, reporter: Reporter, batch_size: int = 64
) -> tuple[np.ndarray, int, int]:
    """Vectors for ``passages`` (cache first); returns (vectors, embedded now, taken from cache)."""
    dim = int(embedder.dim)
    texts = [p.search_text for p in passages]
    keys = [cache_key(embedder.model_id, t) for t in texts]
    vectors = np.zeros((len(texts), dim), dtype=np.float32)
    cache_path = workspace.embedding_cache_dir / f"{_slug(embedder.model_id)}-{dim}.duckdb"
    with EmbeddingCache(cache_path, dim) as cache:
        if cache.rebuilt:
            reporter.warn(f"export: the embedding cache {workspace.relative(cache_path)} was unreadable "
                          f"({cache.rebuilt}); rebuilt it")  # fmt: skip
        found = cache.get(keys)
        todo: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key in found:
                vectors[i] = found[key]
            else:
                todo.setdefault(key, i)
        missing = list(todo.items())
        batches = [missing[s : s + batch_size] for s in range(0, len(missing), batch_size)]
        for batch in reporter.progress(batches, "Embedding passages", total=len(batches)):
            new = embedder.encode([texts[i] for _, i in batch])
            cache.put([k for k, _ in batch], new)
            for (key, _), vec in zip(batch, new, strict=True):
                found[key] = vec
        for i, key in enumerate(keys):
            if key in todo:
                vectors[i] = found[key]
    return vectors, len(missing), len(texts) - len(missing)


def _slug(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", model_id).strip("-") or "model"


def _git_commit(root: Path) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = proc.stdout.strip()
    return commit if proc.returncode == 0 and re.fullmatch(r"[0-9a-f]{40}", commit) else None


__all__ = ["run", "run_all", "ExportReport", "parse_statuses", "sidecar"]


def to_postgres(
    settings: Settings,
    workspace: Workspace | None,
    reporter: Reporter,
    url: str,
    *,
    bundle: Path | None = None,
    replace: bool = False,
) -> Any:
    """``kb export --to postgresql://…``: copy a bundle (default: dist/'s newest) into Postgres, no re-embedding."""
    from pipeline.index import postgres
    from pipeline.index.bundle import newest_bundle, read_bundle

    if bundle is None:
        found = newest_bundle(workspace.dist_dir) if workspace is not None else None
        if found is None:
            raise InputError(
                "no bundle to copy: dist/ holds no kb-*.duckdb", "Run 'kb export' first, or pass --bundle FILE."
            )
        bundle = found
    manifest, content = read_bundle(bundle)
    reporter.info(
        f"export: copying {bundle} ({len(content.atoms)} atoms, {len(content.passages)} passages) to Postgres"
    )
    report = postgres.upsert_bundle(
        url,
        content,
        manifest,
        schema=settings.index.schema_name,
        replace=replace,
        progress=reporter.progress,
        say=reporter.info,
    )
    how = f"{report.passages_written} passages by {'COPY' if report.method == 'copy' else 'INSERT'}"
    how += ", indexes rebuilt" if report.indexes_rebuilt else ""
    reporter.info(
        f"export: Postgres index {settings.index.schema_name}: {report.inserted} atoms inserted, {report.updated} updated, "
        f"{report.deleted} deleted, {report.unchanged} unchanged ({report.rows_changed} changes; {how})"
    )
    return report
