"""Unit tests of the hardening pieces: safeload limits, crash leftovers, cache rebuild, URLs, confinement."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline import safeload
from pipeline.config import SiteSettings
from pipeline.errors import InputError, InputLimitError
from pipeline.workspace import TEMP_PREFIX, Workspace, clean_leftovers, confine, disk_full_error


def _bomb(levels: int = 9) -> str:
    out = "a0: &a0 [" + ", ".join(["lol"] * 9) + "]\n"
    return out + "".join(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, levels))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_bomb(), "expand"),
        ("a: &a [*a]\n", "refers to itself"),
        ("x: " + "[" * 100 + "]" * 100, "nested more than 64"),
        ("n: " + "1" * 200, "number with 200 characters"),
    ],
)
def test_yaml_limits_are_one_error_with_one_hint(text: str, message: str) -> None:
    with pytest.raises(InputLimitError, match=message) as exc:
        safeload.load_yaml(text, path="x.yaml")
    assert exc.value.hint == safeload.LIMIT_HINT and exc.value.line


def test_yaml_ordinary_documents_and_merge_keys_load() -> None:
    assert safeload.load_yaml("base: &b {x: 1}\nuse: {<<: *b, y: 2}\n") == {"base": {"x": 1}, "use": {"x": 1, "y": 2}}
    assert safeload.load_yaml("d: 2026-03-04", dates=False) == {"d": "2026-03-04"}
    assert safeload.load_yaml_all("a: 1\n---\nb: 2\n") == [{"a": 1}, {"b": 2}]


def test_roundtrip_keeps_comments_and_checks_limits() -> None:
    data = safeload.load_yaml_roundtrip("# top\na: 1  # keep\nb: [1, 2]\n")
    data["a"] = 2
    assert safeload.dump_yaml_roundtrip(data) == "# top\na: 2  # keep\nb: [1, 2]\n"
    with pytest.raises(InputLimitError):
        safeload.load_yaml_roundtrip(_bomb())


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, InputLimitError, "nested"),
        ('{"n": ' + "1" * 5000 + "}", InputLimitError, "5,000 characters"),
        ('"\\ud800"', InputError, "surrogate"),
        ('{"a":', InputError, "not valid JSON"),
    ],
)
def test_json_limits(text: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        safeload.load_json(text)
    assert safeload.load_json('"\\ud83d\\ude00"') == "\U0001f600"


def test_leftovers_of_dead_writers_are_cleaned_and_live_ones_kept(tmp_path: Path) -> None:
    ws = Workspace(tmp_path)
    (tmp_path / "dist").mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / "dist" / f"{TEMP_PREFIX}{dead.pid}-abc.kb-x.duckdb.tmp"
    stale.write_text("partial")
    (tmp_path / "dist" / f"{stale.name}.wal").write_text("wal")
    live = tmp_path / "dist" / f"{TEMP_PREFIX}{os.getppid()}-def.kb-y.duckdb.tmp"
    live.write_text("a concurrent writer")

    class R:
        lines: list[str] = []

        def info(self, m: str) -> None:
            self.lines.append(m)

    reporter = R()
    removed = clean_leftovers(ws, reporter)
    assert sorted(p.name for p in removed) == sorted([stale.name, stale.name + ".wal"])
    assert live.exists() and "removed 2 leftover temp file(s)" in reporter.lines[0]


def test_corrupt_embedding_cache_is_rebuilt(tmp_path: Path) -> None:
    from pipeline.index.cache import EmbeddingCache

    path = tmp_path / "cache.duckdb"
    path.write_bytes(b"\0" * 4096)  # what a full disk during the first write leaves
    with EmbeddingCache(path, 4) as cache:
        assert cache.rebuilt and "not a readable DuckDB file" in cache.rebuilt
        cache.put(["k"], np.ones((1, 4)))
        assert list(cache.get(["k"])) == ["k"]


def test_disk_full_error_names_destination_and_free_space(tmp_path: Path) -> None:
    err = disk_full_error(OSError(28, "No space left on device"), tmp_path / "dist" / "kb.duckdb")
    assert err is not None and "kb.duckdb" in err.message and "MB free on" in err.message
    assert "ulimit" in disk_full_error(OSError(27, "File too large"), tmp_path).message
    assert disk_full_error(OSError(2, "No such file"), tmp_path) is None


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", " JavaScript:x", "data:text/html,x", "//evil.org", 'https://a"b']
)
def test_site_urls_only_http_or_relative(url: str) -> None:
    with pytest.raises(ValueError):
        SiteSettings(repo_url=url)
    assert SiteSettings(repo_url="https://example.org/r", edit_uri="edit/main/").repo_url


def test_confine_follows_symlinks_and_allowed_roots(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "s.md").write_text("x")
    (tmp_path / "ws" / "link.md").symlink_to(tmp_path / "out" / "s.md")
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(InputError, match="outside the workspace"):
        confine(ws, tmp_path / "ws" / "link.md")
    with pytest.raises(InputError):
        confine(ws, tmp_path / "ws" / ".." / "out" / "s.md")
    assert confine(ws, tmp_path / "ws" / "link.md", allowed_roots=["../out"]) == (tmp_path / "out" / "s.md").resolve()


def test_change_engine_recipes_schemas_and_answers_use_the_one_policy(tmp_path: Path) -> None:
    """Users' config files (ruamel round-trip in the change engine), recipes, schemas and setup answers."""
    from pipeline.change import docs, recipe, schemas
    from pipeline.setup.output import parse_answers

    with pytest.raises(docs.Unreadable, match="expand"):
        docs.load(_bomb(), "values.yaml")  # the engine skips the file with this reason
    with pytest.raises(docs.Unreadable, match="number with 200 characters"):
        docs.load('{"n": ' + "1" * 200 + "}", "values.json")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_bomb(), encoding="utf-8")
    for read in (recipe.load, schemas._read_schema, lambda f: parse_answers(f, [])):
        with pytest.raises(InputLimitError, match="expand") as caught:
            read(bomb)
        assert caught.value.hint == safeload.LIMIT_HINT and "bomb.yaml" in str(caught.value.path)
    with pytest.raises(InputLimitError):
        recipe.parse_value("[" * 100 + "]" * 100)
    loaded = docs.load("a: 1  # kept\nb: [x]\n", "values.yaml")  # ordinary files still load, comments kept
    assert loaded.docs[0]["a"] == 1 and "# kept" in loaded.dump(loaded.docs)
