"""The review site: a strict mkdocs build of a test workspace, golden index pages, links, safety."""

from __future__ import annotations

import json
import os
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from pipeline.config import Settings
from pipeline.errors import KbError
from pipeline.findings import Finding
from pipeline.models import ATOM_TYPES
from pipeline.reporting import Reporter
from pipeline.stages import site
from pipeline.stages.site.index_pages import index_pages
from pipeline.stages.site.model import SiteModel
from pipeline.workspace import Workspace
from tests.extras import needs_extra
from tests.paths import TESTS_DATA

DATA = TESTS_DATA / "site"
GOLDEN = DATA / "golden"
ALICE_ATOM = "atoms/error/argocd-sync-context-deadline-exceeded.html"
FINDINGS = [
    Finding(**f)
    for f in [
        {
            "path": "atoms/error/argocd-sync-context-deadline-exceeded.md",
            "line": 13,
            "column": 1,
            "severity": "error",
            "rule": "related-unresolved",
            "message": "related title 'Tune reconciliation timeout' matches no atom",
            "hint": "Did you mean 'timeout.reconciliation'?",
        },
        {
            "path": "atoms/playbook/sync-storm-after-a-cluster-upgrade.md",
            "line": 21,
            "column": 1,
            "severity": "warning",
            "rule": "missing-section",
            "message": "missing section '## FAQ' (required for type playbook)",
            "hint": None,
        },
    ]
]


def make_workspace(tmp: Path) -> Workspace:
    root = tmp / "ws"
    shutil.copytree(DATA / "workspace", root)
    return Workspace.at(root)


def build(ws: Workspace, strict: bool = True, findings=FINDINGS, **settings) -> tuple[site.SiteReport, Reporter]:
    rep = Reporter()
    report = site.run(Settings.load(ws.root, **settings), ws, rep, strict=strict, findings=findings)
    return report, rep


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    ws = make_workspace(tmp_path_factory.mktemp("site"))
    report, rep = build(ws)
    assert report.atoms == 8 and report.interviews == 2
    assert not [m for level, m in rep.lines if level == "warning"]
    return ws.root / "build" / "site"


class _Doc(HTMLParser):
    """Every element's tag and attributes, ids, and text of a built page (stdlib html.parser)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.ids: set[str] = set()
        self.text: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        d = dict(attrs)
        self.elements.append((tag, d))
        if d.get("id"):
            self.ids.add(d["id"])
        self._in_script = tag == "script"

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        (self.scripts if self._in_script else self.text).append(data)


def parse(path: Path) -> _Doc:
    doc = _Doc()
    doc.feed(path.read_text(encoding="utf-8"))
    return doc


def article(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    return text[text.index("<article") : text.index("</article>")]


# ---------------------------------------------------------------------------------------------


def test_strict_build_has_a_page_for_every_atom_transcript_and_index(built: Path):
    for rel in [
        "index.html",
        "review-queue.html",
        "coverage.html",
        "browse/by-type.html",
        "browse/tags.html",
        "browse/by-interview.html",
        "browse/by-expert.html",
        "interviews/index.html",
        "interviews/2026-03-04-alice.html",
        "interviews/2026-03-10-carol.html",
        "assets/kb/kb.js",
        "assets/kb/kb.css",
    ]:
        assert (built / rel).is_file(), rel
    atoms = sorted(p.relative_to(built).as_posix() for p in (built / "atoms").rglob("*.html"))
    expected = sorted(
        p.relative_to(DATA / "workspace").with_suffix(".html").as_posix()
        for p in (DATA / "workspace" / "atoms").rglob("*.md")
    )
    assert atoms == expected and len(atoms) == 8
    assert {p.split("/")[1] for p in atoms} == set(ATOM_TYPES)


@pytest.mark.parametrize(
    "page", ["by-type", "tags", "by-interview", "by-expert", "review-queue", "coverage", "interviews"]
)
def test_index_pages_match_golden(page: str, tmp_path: Path):
    ws = make_workspace(tmp_path)
    pages = index_pages(SiteModel.load(ws), FINDINGS, tags_listing=True)
    src = {"review-queue": "review-queue.md", "coverage": "coverage.md", "interviews": "interviews/index.md"}.get(
        page, f"browse/{page}.md"
    )
    golden = GOLDEN / f"{page}.md"
    if os.environ.get("KB_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(pages[src], encoding="utf-8")
    assert pages[src] == golden.read_text(encoding="utf-8")


def test_review_queue_is_in_kb_reviews_order(built: Path):
    """Errors first, then other findings, proposals, drafts by source and age: what ``kb review`` lists."""
    from pipeline.stages import review

    rows = re.findall(r'href="(atoms/[^"]+)"', article(built / "review-queue.html"))
    ids = [Path(h).stem for h in rows]
    expected = [i.atom_id for i in review.queue(Workspace.at(built.parent.parent), FINDINGS)]
    assert ids == expected
    assert ids[0] == "argocd-sync-context-deadline-exceeded"  # the atom with an error comes first


def test_proposals_and_findings_on_the_atom_page_and_in_the_queue(tmp_path: Path):
    ws = make_workspace(tmp_path)
    path = ws.root / "atoms" / "procedure" / "rotate-the-repository-credentials.md"
    proposal = path.with_name(path.stem + ".proposed.md")
    proposal.write_text(path.read_text(encoding="utf-8").replace("## Steps", "## Steps\n\n0. Tell the team."), "utf-8")
    build(ws, strict=False)
    site_dir = ws.root / "build" / "site"
    queue = article(site_dir / "review-queue.html")
    assert "<th>Proposal</th>" in queue and "<th>Findings</th>" in queue
    row = next(r for r in queue.split("<tr>") if "rotate-the-repository-credentials" in r)
    assert "<td>yes</td>" in row
    page = article(site_dir / "atoms" / "procedure" / "rotate-the-repository-credentials.html")
    assert "kb-proposal" in page and "kb review accept rotate-the-repository-credentials" in page
    assert "+0. Tell the team." in page
    errored = article(site_dir / "atoms" / "error" / "argocd-sync-context-deadline-exceeded.html")
    assert "kb-findings" in errored and "related-unresolved" in errored


def test_coverage_page_shows_counts_gaps_and_check_findings(built: Path):
    text = " ".join(" ".join(parse(built / "coverage.html").text).split())
    assert "Atoms without FAQ (1)" in text and "Atoms without sources (1)" in text
    assert "related title 'Tune reconciliation timeout' matches no atom" in text
    assert "1 errors, 1 warnings." in text


def test_atom_page_header_faq_related_and_sources(built: Path):
    page = built / ALICE_ATOM
    html = article(page)
    doc = _Doc()
    doc.feed(html)
    assert 'class="kb-badge kb-type kb-type--error">Error<' in html
    assert 'kb-status--in-review">in-review<' in html
    for fact in (
        "<dt>Version</dt><dd>2</dd>",
        "<dt>Author</dt><dd>Alice Moreau (SRE lead)</dd>",
        "<dt>Created</dt><dd>2026-03-04</dd>",
        "<dt>Updated</dt><dd>2026-03-11</dd>",
        "<dt>Reviewed by</dt><dd>Dana Kim</dd>",
    ):
        assert fact in html
    tags = [d["href"] for tag, d in doc.elements if tag == "a" and "md-tag" in (d.get("class") or "")]
    assert tags == [
        "../../browse/tags.html#tag:repo-server",
        "../../browse/tags.html#tag:sync",
        "../../browse/tags.html#tag:timeouts",
    ]
    questions = [d for tag, d in doc.elements if tag == "h3" and "kb-faq-q" in (d.get("class") or "")]
    assert len(questions) == 2 and "<strong>A:</strong> That is the default timeout" in html
    assert "**Q:**" not in html
    assert (
        '<a href="../troubleshooting-tip/repo-server-runs-out-of-memory.html">Repo server runs out of memory</a>'
        in html
    )
    assert '<span class="kb-unresolved" title="No atom has this title">Tune reconciliation timeout</span>' in html
    assert (
        '<a class="kb-time" href="../../interviews/2026-03-04-alice.html#t=12" data-t="12">00:00:12–00:00:17</a>'
        in html
    )
    assert '<span class="kb-speaker">Alice Moreau</span> <span class="kb-role">expert</span>' in html
    assert "when you see deadline exceeded it is almost always the repo server" in html
    assert "Edit this atom" not in html  # no repo_url configured


def test_document_source_shows_document_and_heading(built: Path):
    html = article(built / "atoms/config-template/repo-server-resource-limits.html")
    assert (
        '<span class="kb-doc">docs/argocd/tuning.md</span> › <span class="kb-heading">Repo server sizing</span> (line 12)'
        in html
    )


def test_edit_link_when_repo_url_is_set(tmp_path: Path):
    ws = make_workspace(tmp_path)
    build(ws, **{"site.repo_url": "https://git.example.com/team/kb/", "site.edit_uri": "-/edit/main/"})
    html = article(ws.root / "build/site" / ALICE_ATOM)
    want = "https://git.example.com/team/kb/-/edit/main/atoms/error/argocd-sync-context-deadline-exceeded.md"
    assert f'<a class="kb-edit" href="{want}">Edit this atom</a>' in html
    assert html.count(want) == 2  # ours and material's edit button
    assert "Edit this atom" not in article(ws.root / "build/site/coverage.html")


def test_transcript_page_has_turns_anchors_roles_and_citing_atoms(built: Path):
    page = built / "interviews/2026-03-04-alice.html"
    doc = parse(page)
    html = article(page)
    assert {"t-0", "t-4", "t-12", "t-18", "t-20", "t-28", "t-31"} <= doc.ids
    turns = [d for tag, d in doc.elements if tag == "div" and "kb-turn " in (d.get("class") or "") + " "]
    assert len(turns) == 6  # segments 1 and 2 are one turn of Alice's
    assert '<span class="kb-speaker">Bob Chen</span> <span class="kb-role">interviewer</span>' in html
    assert 'class="kb-no-audio"' in html and "<audio" not in html
    cited = re.findall(r'<aside class="kb-cited">(.*?)</aside>', html)
    assert len(cited) == 3
    assert "../atoms/error/argocd-sync-context-deadline-exceeded.html" in cited[0]
    assert "../atoms/faq/argo-cd-sync-questions.html" in cited[0]
    assert "../atoms/pitfall/do-not-cascade-delete-during-an-incident.html" in cited[2]


def _targets(built: Path):
    """(page, tag, attribute value) for every href/src in the built HTML (404.html uses absolute URLs)."""
    for page in sorted(built.rglob("*.html")):
        if page.name == "404.html" and page.parent == built:
            continue
        for tag, attrs in parse(page).elements:
            for name in ("href", "src"):
                if attrs.get(name) is not None:
                    yield page, tag, attrs[name]


def test_no_broken_internal_links(built: Path):
    checked = 0
    docs: dict[Path, _Doc] = {}
    broken = []
    for page, _tag, value in _targets(built):
        parts = urlsplit(value)
        if parts.scheme or value.startswith("//"):
            continue
        target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
        if target.is_dir():
            target = target / "index.html"
        checked += 1
        if not target.is_file():
            broken.append(f"{page.relative_to(built)}: {value}")
            continue
        frag = unquote(parts.fragment)
        if not frag or target.suffix != ".html":
            continue
        doc = docs.setdefault(target, parse(target))
        if m := re.fullmatch(r"t=(\d+(?:\.\d+)?)", frag):
            second = float(m.group(1))
            spans = [
                (float(d["data-start"]), float(d["data-end"]))
                for t, d in doc.elements
                if "kb-seg" in (d.get("class") or "")
            ]
            if not any(s <= second + 1 and second <= e for s, e in spans):
                broken.append(f"{page.relative_to(built)}: {value} (no segment at {second} s)")
        elif frag not in doc.ids:
            broken.append(f"{page.relative_to(built)}: {value} (no id '{frag}')")
    assert checked > 200
    assert broken == []


def test_nothing_is_fetched_from_outside_the_site(built: Path):
    external = []
    for page, tag, value in _targets(built):
        if tag == "a":
            continue  # a link a person may follow, not a fetch
        if urlsplit(value).scheme in ("http", "https") or value.startswith("//"):
            external.append(f"{page.relative_to(built)}: <{tag}> {value}")
    assert external == []
    for css in built.rglob("*.css"):
        text = css.read_text(encoding="utf-8")
        assert not re.search(r"@import|url\(\s*['\"]?(https?:)?//", text), css
    index = (built / "index.html").read_text(encoding="utf-8")
    assert "fonts.googleapis" not in index and "fonts.gstatic" not in index and "unpkg.com" not in index
    assert '<script src="assets/kb/iframe-worker-shim.js">' in index


HOSTILE_ATOM = """---
id: hostile-atom
title: "<img src=x onerror=alert('title')>"
type: pitfall
summary: "<script>alert('summary')</script>"
author: "<b onmouseover=alert('author')>Mallory</b>"
created: 2026-03-01
status: draft
tags: ["<i onclick=alert('tag')>x</i>"]
related: ["<svg onload=alert('related')>"]
sources:
  - interview: 2026-03-04-alice
    speaker: "<img src=x onerror=alert('speaker')>"
    start: 12.0
    end: 17.5
    quote: "<script>alert('quote')</script><img src=x onerror=alert('quote')>"
---
## What not to do

<script>alert('body')</script>
<img src=x onerror="alert('body-img')">
<div onclick="alert('div')">click</div>
[click me](javascript:alert('link'))
<a href="javascript:alert('a')">a</a>
<iframe src="https://evil.example/"></iframe>
<style>body { display: none }</style>

## Why

It {: onclick="alert('attr')" } breaks.

## What to do instead

Nothing.

## FAQ

**Q:** <img src=x onerror=alert('faq-q')>?
**A:** <script>alert('faq-a')</script>
"""


def test_hostile_text_cannot_inject_html_or_script(tmp_path: Path):
    ws = make_workspace(tmp_path)
    (ws.atoms_dir / "pitfall" / "hostile-atom.md").write_text(HOSTILE_ATOM, encoding="utf-8")
    tpath = ws.interview_dir("2026-03-04-alice") / "transcript.json"
    data = json.loads(tpath.read_text(encoding="utf-8"))
    data["speakers"][0]["name"] = "<img src=x onerror=alert('name')>"
    data["segments"][2]["text"] = "<script>alert('turn')</script><img src=x onerror=alert('turn')>"
    tpath.write_text(json.dumps(data), encoding="utf-8")
    build(ws)
    built = ws.root / "build" / "site"
    pages = [p for p in built.rglob("*.html") if p.name != "404.html"]
    for page in pages:
        doc = parse(page)
        assert not any("alert(" in s for s in doc.scripts), page
        doc = _Doc()
        doc.feed(article(page))  # material's own icons are inline <svg>: look at the content
        for tag, attrs in doc.elements:
            assert tag not in ("iframe", "style", "svg", "object", "embed"), (page, tag)
            for name, value in attrs.items():
                assert not name.startswith("on"), (page, tag, name, value)
                assert not (value or "").strip().lower().startswith("javascript:"), (page, tag, name, value)
    hostile = (built / "atoms/pitfall/hostile-atom.html").read_text(encoding="utf-8")
    # the hostile quote, title and tag are shown as text
    assert "<blockquote class=\"kb-quote\">&lt;script&gt;alert('quote')&lt;/script&gt;&lt;img src=x" in hostile
    assert ">&lt;img src=x onerror=alert('title')&gt;<a class=\"headerlink\"" in hostile
    assert "<title>&lt;img src=x onerror=alert(&#x27;title&#x27;)&gt; - " in hostile
    assert 'class="md-tag">&lt;i onclick=alert(&#x27;tag&#x27;)&gt;x&lt;/i&gt;</a>' in hostile
    transcript = (built / "interviews/2026-03-04-alice.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert('turn')&lt;/script&gt;&lt;img src=x onerror=alert('turn')&gt;</span>" in transcript
    index = json.loads((built / "search/search_index.json").read_text(encoding="utf-8"))
    for entry in index["docs"]:
        assert "<script" not in entry["text"] and "<img" not in entry["text"] and "<img" not in entry["title"]


@needs_extra("site")
def test_unreadable_atom_fails_strict_build_and_is_listed_otherwise(tmp_path: Path):
    ws = make_workspace(tmp_path)
    (ws.atoms_dir / "error" / "broken.md").write_text(
        "---\nid: broken\ntitle: [unclosed\n---\nbody\n", encoding="utf-8"
    )
    with pytest.raises(KbError) as info:
        build(ws)
    assert (
        "atoms/error/broken.md:4: front matter is not valid YAML" in info.value.message
        and "--no-strict" in info.value.hint
    )
    assert not (ws.root / "build/site").exists()  # nothing half-built
    report, rep = build(ws, strict=False)
    assert report.atoms == 8
    assert any("broken.md" in m for level, m in rep.lines if level == "warning")
    assert "Unreadable files (1)" in article(ws.root / "build/site/coverage.html")


def test_broken_body_link_fails_strict_build_and_keeps_the_previous_site(tmp_path: Path):
    ws = make_workspace(tmp_path)
    build(ws)
    marker = ws.root / "build/site/index.html"
    before = marker.read_text(encoding="utf-8")
    atom = ws.atoms_dir / "procedure" / "rotate-the-repository-credentials.md"
    atom.write_text(
        atom.read_text(encoding="utf-8").replace("## FAQ", "See [x](../error/missing.md).\n\n## FAQ"), encoding="utf-8"
    )
    with pytest.raises(KbError) as info:
        build(ws)
    assert "missing.md" in info.value.message
    assert marker.read_text(encoding="utf-8") == before
    assert [p.name for p in (ws.root / "build").iterdir()] == ["site"]


def test_run_all_skips_a_fresh_site_and_rebuilds_after_a_change(tmp_path: Path):
    ws = make_workspace(tmp_path)
    settings = Settings.load(ws.root)
    first = site.run_all(settings, ws, Reporter())
    assert not first.skipped and first.atoms == 8
    rep = Reporter()
    second = site.run_all(settings, ws, rep)
    assert second.skipped and "is fresh" in str(second) and rep.lines[0][0] == "skip"
    atom = ws.atoms_dir / "faq" / "argo-cd-sync-questions.md"
    atom.write_text(atom.read_text(encoding="utf-8").replace("status: draft", "status: in-review"), encoding="utf-8")
    third = site.run_all(settings, ws, Reporter())
    assert not third.skipped
    assert site.run_all(settings, ws, Reporter(), force=True).skipped is False
    (ws.atoms_dir / "error" / "broken.md").write_text("no front matter\n", encoding="utf-8")
    rep = Reporter()
    fourth = site.run_all(settings, ws, rep)  # not strict: kb run goes on to export
    assert fourth.atoms == 8 and any("broken.md" in m for level, m in rep.lines if level == "warning")


@needs_extra("site")
def test_kb_init_workspace_builds_strictly(tmp_path: Path, kb):
    assert kb("init", tmp_path / "fresh", "--name", "Fresh").exit_code == 0
    result = kb("--workspace", tmp_path / "fresh", "site")
    assert result.exit_code == 0, result.stderr
    assert "build/site" in result.stdout and "index.html" in result.stdout
    home = (tmp_path / "fresh/build/site/index.html").read_text(encoding="utf-8")
    assert "Fresh knowledge base" in home


@needs_extra("site")
def test_kb_site_command_builds_with_check_findings(tmp_path: Path, kb):
    ws = make_workspace(tmp_path)
    result = kb("--workspace", ws.root, "site")
    assert result.exit_code == 0, result.stderr
    assert "built" in result.stdout and "8 atoms" in result.stdout
    coverage = article(ws.root / "build/site/coverage.html")
    assert "kb check</code> was not run" not in coverage
    findings = coverage[coverage.index('id="kb-check-findings"') :]
    assert "Tune reconciliation timeout" in findings  # the real kb check's finding for the unresolved title


@needs_extra("site")
def test_kb_site_reports_a_missing_mkdocs_yml(tmp_path: Path, kb):
    (tmp_path / "empty" / "atoms").mkdir(parents=True)
    (tmp_path / "empty" / "kb.yaml").write_text("threads: 1\n", encoding="utf-8")
    result = kb("--workspace", tmp_path / "empty", "site")
    assert result.exit_code == 1
    assert "mkdocs.yml does not exist" in result.stderr and "kb init" in result.stderr


def _add_recording(ws: Workspace) -> Path:
    import wave

    import yaml

    from pipeline.workspace import sha256_file

    folder = ws.interview_dir("2026-03-10-carol")
    wav = folder / "recording.wav"
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 8000 * 25)
    meta = yaml.safe_load((folder / "interview.yaml").read_text(encoding="utf-8"))
    meta["media"] = [
        {"kind": "recording", "file": "recording.wav", "sha256": sha256_file(wav), "bytes": wav.stat().st_size}
    ]
    (folder / "interview.yaml").write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
    return wav


@pytest.mark.parametrize("mode", ["copy", "link", "none"])
def test_recordings_are_copied_linked_or_left_out(tmp_path: Path, mode: str):
    ws = make_workspace(tmp_path)
    wav = _add_recording(ws)
    build(ws, **{"site.media": mode})
    built = ws.root / "build/site"
    page = article(built / "interviews/2026-03-10-carol.html")
    media = built / "interviews/2026-03-10-carol/recording.wav"
    if mode == "none":
        assert "<audio" not in page and not media.exists()
        return
    assert '<audio class="kb-audio" controls="" preload="metadata" src="2026-03-10-carol/recording.wav">' in page
    assert media.read_bytes() == wav.read_bytes()
    assert media.is_symlink() is (mode == "link")


@pytest.mark.parametrize("how", ["hand-edited", "referenced"])
def test_a_recording_outside_the_workspace_is_published_only_when_a_person_registered_it(tmp_path: Path, how: str):
    """interview.yaml naming a recording outside: refused (with the path) unless `kb add --reference` put it there."""
    import yaml

    from pipeline.workspace import sha256_file

    ws = make_workspace(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    moved = Path(shutil.move(_add_recording(ws), outside / "private.wav"))
    folder = ws.interview_dir("2026-03-10-carol")
    meta = yaml.safe_load((folder / "interview.yaml").read_text(encoding="utf-8"))
    ref = {"kind": "recording", "sha256": sha256_file(moved), "bytes": moved.stat().st_size}
    if how == "hand-edited":  # a relative path climbing out, as if copied in: nobody registered that file
        ref["file"] = "../../../outside/private.wav"
    else:  # what `kb add --reference` writes: the absolute path, not copied, its sha256
        ref.update(file=str(moved), copied=False)
    meta["media"] = [ref]
    (folder / "interview.yaml").write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
    _, rep = build(ws, strict=False, **{"site.media": "copy"})
    built = ws.root / "build/site"
    page = article(built / "interviews/2026-03-10-carol.html")
    published = sorted(p.name for p in (built / "interviews").rglob("*.wav"))
    if how == "referenced":
        assert published == ["private.wav"] and "<audio" in page
        return
    assert published == [] and "<audio" not in page
    said = " ".join(m for _, m in rep.lines) + " ".join(p.read_text(encoding="utf-8") for p in built.glob("*.html"))
    assert "outside the workspace" in said and "private.wav" in said
