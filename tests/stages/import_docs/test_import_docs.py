"""`kb import-docs` on small hand-made docs: types, cutting, Markdown handling, re-imports, errors."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from pipeline import atoms
from pipeline.config import Settings
from pipeline.errors import InputError, NotFoundError
from pipeline.reporting import Reporter
from pipeline.stages import check as check_stage
from pipeline.stages import import_docs
from pipeline.workspace import Workspace

DAY1 = dt.date(2026, 3, 4)
DAY2 = dt.date(2026, 3, 11)


def words(n: int, word: str = "lorem") -> str:
    """``n`` words of filler prose, as sentences, wrapped like real Markdown."""
    text = " ".join(f"{word}{i % 7}." if i % 12 == 11 else f"{word}{i % 7}" for i in range(n))
    return textwrap.fill(text, 90)


def write_docs(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    return root


def do_import(ws: Path, docs: Path, today: dt.date = DAY1, **kw):
    reporter = Reporter()
    report = import_docs.run(Settings.load(ws), Workspace.at(ws), reporter, docs, today=today, **kw)
    return report, reporter


def all_atoms(ws: Path) -> dict[str, atoms.Atom]:
    return {p.stem: atoms.read(p) for p in Workspace.at(ws).atom_files()}


def check_errors(ws: Path) -> list:
    report = check_stage.run(Settings.load(ws), Workspace.at(ws), Reporter(), duplicates=False)
    return [f for f in report.findings if f.severity == "error"]


@pytest.fixture
def ws(tmp_path):
    root = tmp_path / "ws"
    (root / "atoms").mkdir(parents=True)
    return root


# ---------------------------------------------------------------------------------------------
# types

TYPED_DOCS = {
    "error": """
        # Sync fails with `context deadline exceeded`

        The sync stops after a minute with this message:

        ```console
        $ argocd app sync guestbook
        FATA[0060] rpc error: code = DeadlineExceeded desc = context deadline exceeded
        ```

        ## Solution

        Raise the repo server timeout, then sync again.
        """,
    "procedure": """
        # Rotate the admin password

        Do this after every handover of the cluster.

        1. Log in with the current password.
        2. Run `argocd account update-password`.
        3. Type the new password twice.
        4. Log out and log in again to confirm.
        """,
    "config-template": """
        # Ingress for the API server

        ```yaml
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata:
          name: argocd-server
          namespace: argocd
        spec:
          rules:
            - host: argocd.example.com
              http:
                paths:
                  - path: /
                    pathType: Prefix
                    backend:
                      service:
                        name: argocd-server
                        port:
                          number: 443
        ```
        """,
    "faq": """
        # Questions

        ## Why is my app OutOfSync after a sync?

        A mutating webhook changed a field after Argo CD applied it.

        ## How do I reset the admin password?

        Delete the `argocd-initial-admin-secret` and restart the server.
        """,
    "pitfall": """
        # Don't edit live resources by hand

        Changes made with kubectl edit are overwritten at the next sync, and the history of why
        they were made is lost. Make the change in git instead.
        """,
    "interface-input": """
        # `--insecure-skip-tls-verify`

        Skips the check of the server certificate. Accepted values: true or false.
        The default is false.
        """,
    "troubleshooting-tip": """
        # Finding the slow repository

        Look at the repo server logs: the line with the longest duration names the repository
        that slows every refresh down. Moving its large files out of git helps most.
        """,
}


@pytest.mark.parametrize("expected", list(TYPED_DOCS))
def test_type_inference(ws, tmp_path, expected):
    docs = write_docs(tmp_path / "docs", {"page.md": TYPED_DOCS[expected]})
    do_import(ws, docs)
    found = all_atoms(ws)
    assert len(found) == 1, list(found)
    (atom,) = found.values()
    assert atom.meta.type == expected
    assert check_errors(ws) == []


def test_error_atom_renames_solution_and_keeps_the_message(ws, tmp_path):
    docs = write_docs(tmp_path / "docs", {"page.md": TYPED_DOCS["error"]})
    do_import(ws, docs)
    (atom,) = all_atoms(ws).values()
    assert atom.meta.title == "Sync fails with context deadline exceeded"
    assert atom.meta.id == "sync-fails-with-context-deadline-exceeded"
    assert [s.heading for s in atom.sections] == ["How to resolve"]
    assert "FATA[0060] rpc error: code = DeadlineExceeded desc = context deadline exceeded" in atom.body
    assert [(s.document, s.heading, s.line) for s in atom.meta.sources] == [
        ("page.md", "Sync fails with `context deadline exceeded`", 1),
        ("page.md", "Solution", 10),
    ]


def test_faq_pairs_and_structure_headings(ws, tmp_path):
    docs = write_docs(tmp_path / "docs", {"q.md": TYPED_DOCS["faq"], "p.md": TYPED_DOCS["procedure"]})
    do_import(ws, docs)
    found = all_atoms(ws)
    faq = found["questions"]
    assert [(p.question, p.answer) for p in faq.faq] == [
        ("Why is my app OutOfSync after a sync?", "A mutating webhook changed a field after Argo CD applied it."),
        ("How do I reset the admin password?", "Delete the `argocd-initial-admin-secret` and restart the server."),
    ]
    assert [s.heading for s in faq.meta.sources] == [
        "Questions",
        "Why is my app OutOfSync after a sync?",
        "How do I reset the admin password?",
    ]
    proc = found["rotate-the-admin-password"]
    assert [s.heading for s in proc.sections] == ["Steps"]  # the numbered list gets its section
    assert "1. Log in with the current password." in proc.body


# ---------------------------------------------------------------------------------------------
# cutting


def test_long_section_is_split_at_sub_headings(ws, tmp_path):
    parts = "\n\n".join(f"## Topic {n} of the guide\n\n{words(500, 'alpha')}" for n in range(1, 4))
    docs = write_docs(
        tmp_path / "docs", {"guide.md": f"# Operating guide\n\nIntro words here for the guide page.\n\n{parts}\n"}
    )
    do_import(ws, docs)
    found = all_atoms(ws)
    titles = sorted(a.meta.title for a in found.values())
    assert "Topic 2 of the guide" in titles and "Topic 3 of the guide" in titles
    for atom in found.values():
        assert atoms.word_count(atom.body) <= 800
    assert check_errors(ws) == []


def test_long_section_without_headings_is_cut_between_paragraphs(ws, tmp_path):
    paragraphs = "\n\n".join(words(150, f"p{n}x") for n in range(14))  # 2100 words, no sub-heading
    docs = write_docs(tmp_path / "docs", {"long.md": f"# A very long page\n\n{paragraphs}\n"})
    do_import(ws, docs)
    found = all_atoms(ws)
    assert sorted(found) == [f"a-very-long-page-part-{i}" for i in (1, 2, 3)]
    counts = [atoms.word_count(a.body) for a in found.values()]
    assert all(400 <= c <= 800 for c in counts), counts
    joined = "\n\n".join(found[f"a-very-long-page-part-{i}"].body.strip() for i in (1, 2, 3))
    assert joined == paragraphs  # nothing lost, nothing repeated, in order
    assert check_errors(ws) == []


def test_small_sibling_sections_are_merged(ws, tmp_path):
    sections = "\n\n".join(f"## Setting {name}\n\n{words(60, name)}" for name in ("alpha", "beta", "gamma", "delta"))
    docs = write_docs(tmp_path / "docs", {"notes.md": f"# Notes\n\n{words(900, 'intro')}\n\n{sections}\n"})
    do_import(ws, docs)
    found = all_atoms(ws)
    merged = [a for a in found.values() if len(a.meta.sources) == 4]
    assert len(merged) == 1, [a.meta.title for a in found.values()]
    atom = merged[0]
    assert atom.meta.title == "Notes: Setting alpha, Setting beta, Setting gamma and Setting delta"
    assert [s.heading for s in atom.sections] == ["Setting alpha", "Setting beta", "Setting gamma", "Setting delta"]
    assert check_errors(ws) == []


def test_errors_are_never_merged(ws, tmp_path):
    """A page listing errors gives one atom per error, even when the whole page fits one screen."""
    for n_entries, size, folder in ((3, 10, "short"), (6, 150, "long")):
        entries = "\n\n".join(
            f"### {n}) Pull fails with `unauthorized: access to image {n} denied`\n\n{words(size, 'fix')}"
            for n in range(1, n_entries + 1)
        )
        docs = write_docs(tmp_path / folder, {"troubleshooting.md": f"# Troubleshooting\n\n{entries}\n"})
        target = ws.parent / f"ws-{folder}"
        target.mkdir()
        do_import(target, docs)
        found = all_atoms(target)
        assert len(found) == n_entries and {a.meta.type for a in found.values()} == {"error"}
        assert check_errors(target) == []
    assert found["pull-fails-with-unauthorized-access-to-image-3-denied"].meta.related == [
        "Pull fails with unauthorized: access to image 2 denied",
        "Pull fails with unauthorized: access to image 4 denied",
    ]


def test_a_page_that_fits_stays_one_atom(ws, tmp_path):
    tips = "\n\n".join(f"## Tip {name}\n\n{words(40, name)}" for name in ("alpha", "beta", "gamma"))
    docs = write_docs(tmp_path / "docs", {"tips.md": f"# Operating tips\n\n{words(30, 'intro')}\n\n{tips}\n"})
    do_import(ws, docs)
    (atom,) = all_atoms(ws).values()
    assert atom.meta.title == "Operating tips"
    assert [s.heading for s in atom.meta.sources] == ["Operating tips", "Tip alpha", "Tip beta", "Tip gamma"]
    assert [s.heading for s in atom.sections] == ["Tip alpha", "Tip beta", "Tip gamma"]


def test_code_blocks_are_kept_whole(ws, tmp_path):
    code = "\n".join(f"      key{i}: value number {i} of the long config" for i in range(110))  # ~770 words
    doc = f"# Big config\n\n{words(300, 'before')}\n\n```yaml\nconfig:\n{code}\n```\n\n{words(300, 'after')}\n"
    docs = write_docs(tmp_path / "docs", {"big.md": doc})
    do_import(ws, docs)
    bodies = [a.body for a in all_atoms(ws).values()]
    block = "```yaml\nconfig:\n" + code + "\n```"
    assert sum(block in b for b in bodies) == 1  # whole, in exactly one atom
    assert all(b.count("```") % 2 == 0 for b in bodies)
    assert check_errors(ws) == []


def test_code_block_past_the_hard_cap_is_cut_with_a_warning(ws, tmp_path):
    code = "\n\n".join(f"line {i} with six words here" for i in range(400))  # 2400 words
    docs = write_docs(tmp_path / "docs", {"huge.md": f"# Huge listing\n\n```text\n{code}\n```\n"})
    report, reporter = do_import(ws, docs)
    assert any("code block was cut in parts" in m for level, m in reporter.lines if level == "warning")
    for atom in all_atoms(ws).values():
        assert atoms.word_count(atom.body) <= 1500
    assert check_errors(ws) == []


# ---------------------------------------------------------------------------------------------
# Markdown details


def test_front_matter_comments_admonitions_tables_and_links(ws, tmp_path):
    doc = """
        ---
        title: Sync options reference
        weight: 3
        ---
        <!-- this page is generated; edit the template instead -->

        Options you can set per application or per resource.

        !!! warning "Pruning"
            Pruning deletes resources that are no longer in git.
            See [Diffing](../user-guide/diffing.md#known-types) and [this section](#prune).

        | option | default | effect |
        |---|---|---|
        | `Prune=false` | true | keep the resource |

        ![flow](img/flow.png) Read the [upstream docs](https://argo-cd.readthedocs.io/).
        """
    docs = write_docs(tmp_path / "docs", {"guide/sync.md": doc})
    do_import(ws, docs)
    (atom,) = all_atoms(ws).values()
    assert atom.meta.title == "Sync options reference"  # from the document's front matter
    body = atom.body
    assert "<!--" not in body and "weight: 3" not in body
    assert "> **Warning:** Pruning\n> Pruning deletes resources that are no longer in git." in body
    assert "See Diffing (user-guide/diffing.md#known-types) and this section." in body
    assert "| `Prune=false` | true | keep the resource |" in body
    assert "(image: flow, guide/img/flow.png)" in body
    assert "[upstream docs](https://argo-cd.readthedocs.io/)" in body
    assert atom.meta.tags == ["guide", "sync"]
    assert atom.meta.sources[0].line == 1  # the document itself (no heading), from its first line


def test_tags_from_path_and_flags(ws, tmp_path):
    docs = write_docs(tmp_path / "docs", {"operator-manual/user-management/index.md": TYPED_DOCS["pitfall"]})
    do_import(ws, docs, tags=["Argo CD", "imported"])
    (atom,) = all_atoms(ws).values()
    assert atom.meta.tags == ["operator-manual", "user-management", "argo-cd", "imported"]


def test_non_markdown_files_are_skipped_with_a_note(ws, tmp_path):
    docs = write_docs(
        tmp_path / "docs",
        {"a.md": TYPED_DOCS["pitfall"], "LICENSE": "Apache", "img/x.png": b"\x89PNG", ".git/config": "[core]"},
    )
    report, reporter = do_import(ws, docs)
    assert report.skipped == ["LICENSE", "img/x.png"]
    assert ("info", "skipped LICENSE: not a Markdown file") in reporter.lines


def test_titles_are_unique_and_ids_deterministic(ws, tmp_path):
    page = (
        "# {name}\n\n"
        + "\n\n".join(f"## Examples\n\n{words(450, 'ex')}" for _ in range(1))
        + "\n\n## Limits\n\n"
        + words(450, "lim")
    )
    docs = write_docs(
        tmp_path / "docs", {"a/setup.md": page.format(name="Setup"), "b/setup.md": page.format(name="Setup")}
    )
    do_import(ws, docs)
    found = all_atoms(ws)
    titles = [a.meta.title for a in found.values()]
    assert len(titles) == len(set(titles)) == 4
    assert sorted(found) == [
        "setup-examples-a-setup-md",
        "setup-examples-b-setup-md",
        "setup-limits-a-setup-md",
        "setup-limits-b-setup-md",
    ]
    assert check_errors(ws) == []


# ---------------------------------------------------------------------------------------------
# re-imports


def _bytes(ws: Path) -> dict[str, bytes]:
    return {str(p.relative_to(ws)): p.read_bytes() for p in sorted((ws / "atoms").rglob("*.md"))}


FAQ_PAGE = """
    # FAQ

    ## Why is my app OutOfSync after a sync?

    A mutating webhook changed a field after Argo CD applied it.

    ## How do I reset the admin password?

    Delete the `argocd-initial-admin-secret` and restart the server.
    """

GUIDE = {
    "faq.md": FAQ_PAGE,
    "errors.md": TYPED_DOCS["error"],
    "tips.md": TYPED_DOCS["troubleshooting-tip"],
}


def test_reimport_is_idempotent_and_byte_identical(ws, tmp_path):
    docs = write_docs(tmp_path / "docs", GUIDE)
    first, _ = do_import(ws, docs)
    assert first.counts["created"] == 3
    before = _bytes(ws)
    mtimes = {p: p.stat().st_mtime_ns for p in (ws / "atoms").rglob("*.md")}
    second, _ = do_import(ws, docs, today=DAY2)
    assert second.counts == {
        "created": 0,
        "updated": 0,
        "unchanged": 3,
        "kept-human-edits": 0,
        "proposals": 0,
        "vanished": 0,
        "deleted-by-person": 0,
    }
    assert _bytes(ws) == before
    assert {p: p.stat().st_mtime_ns for p in (ws / "atoms").rglob("*.md")} == mtimes


def test_changed_doc_updates_unedited_atom(ws, tmp_path):
    docs = write_docs(tmp_path / "docs", GUIDE)
    do_import(ws, docs)
    tips = docs / "tips.md"
    tips.write_text(tips.read_text().replace("helps most", "helps the most"), encoding="utf-8")
    report, _ = do_import(ws, docs, today=DAY2)
    assert report.ids("update") == ["finding-the-slow-repository"]
    atom = all_atoms(ws)["finding-the-slow-repository"]
    assert "helps the most" in atom.body
    assert (atom.meta.created, atom.meta.updated, atom.meta.version) == (DAY1, DAY2, 2)
    assert not atoms.is_human_edited(atom)


def test_human_edits_survive_and_changes_are_proposed(ws, tmp_path, kb):
    docs = write_docs(tmp_path / "docs", GUIDE)
    do_import(ws, docs)
    path = ws / "atoms" / "troubleshooting-tip" / "finding-the-slow-repository.md"
    edited = path.read_text(encoding="utf-8").replace("helps most.", "helps most.\n\nReviewer: also check LFS.")
    path.write_text(edited, encoding="utf-8")

    # docs unchanged: the edit is kept, nothing to propose
    report, _ = do_import(ws, docs, today=DAY2)
    assert report.ids("kept") == ["finding-the-slow-repository"] and report.ids("propose") == []
    assert path.read_text(encoding="utf-8") == edited

    # docs changed: the edit is still kept, the import's version goes beside it
    tips = docs / "tips.md"
    tips.write_text(tips.read_text().replace("helps most", "helps the most"), encoding="utf-8")
    result = kb("-w", ws, "import-docs", docs)
    assert result.exit_code == 0, result.stderr
    assert path.read_text(encoding="utf-8") == edited
    proposal = path.with_name("finding-the-slow-repository.proposed.md")
    assert "helps the most" in proposal.read_text(encoding="utf-8")
    assert (
        "kept: atoms/troubleshooting-tip/finding-the-slow-repository.md  (edited by a person since the import)"
        in result.stdout
    )
    assert "proposed: atoms/troubleshooting-tip/finding-the-slow-repository.proposed.md" in result.stdout
    assert "kept-human-edits: 1" in result.stdout
    # a proposal is not an atom: kb check does not see it, and a second run leaves it alone
    assert check_errors(ws) == []
    text = proposal.read_bytes()
    report, _ = do_import(ws, docs, today=DAY2)
    assert report.ids("propose") == [] and proposal.read_bytes() == text


def test_vanished_sections_are_reported_not_deleted(ws, tmp_path, kb):
    docs = write_docs(tmp_path / "docs", GUIDE)
    do_import(ws, docs)
    (docs / "tips.md").unlink()
    result = kb("-w", ws, "import-docs", docs)
    assert result.exit_code == 0, result.stderr
    assert (ws / "atoms" / "troubleshooting-tip" / "finding-the-slow-repository.md").is_file()
    assert "source vanished: atoms/troubleshooting-tip/finding-the-slow-repository.md" in result.stdout
    # the error atom's related title stays resolvable: nothing dangling
    assert check_errors(ws) == []


def test_existing_atom_with_the_same_id_is_not_taken_over(ws, tmp_path, kb):
    assert kb("-w", ws, "new", "troubleshooting-tip", "Finding the slow repository").exit_code == 0
    mine = ws / "atoms" / "troubleshooting-tip" / "finding-the-slow-repository.md"
    text = mine.read_bytes()
    docs = write_docs(tmp_path / "docs", {"tips.md": TYPED_DOCS["troubleshooting-tip"]})
    report, _ = do_import(ws, docs)
    assert mine.read_bytes() == text
    assert report.ids("create") == ["finding-the-slow-repository-2"]
    report, _ = do_import(ws, docs)
    assert report.ids("unchanged") == ["finding-the-slow-repository-2"]


def test_dry_run_writes_nothing(ws, tmp_path, kb):
    docs = write_docs(tmp_path / "docs", GUIDE)
    result = kb("-w", ws, "import-docs", docs, "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "would create: atoms/faq/faq.md" in result.stdout
    assert "would import 3 document(s) into 3 atom(s) (error 1, troubleshooting-tip 1, faq 1)" in result.stdout
    assert list((ws / "atoms").rglob("*")) == [] and not (ws / ".kb").exists()


def test_cli_prints_counts_by_type(ws, tmp_path, kb):
    docs = write_docs(tmp_path / "docs", GUIDE)
    result = kb("-w", ws, "import-docs", docs, "--tag", "demo")
    assert result.exit_code == 0, result.stderr
    assert "atoms by type  error: 1  troubleshooting-tip: 1  faq: 1" in result.stdout
    assert "created: 3  updated: 0  unchanged: 0  kept-human-edits: 0" in result.stdout
    assert all("demo" in a.meta.tags for a in all_atoms(ws).values())


# ---------------------------------------------------------------------------------------------
# bad input: a clear error, exit 1, nothing written


def test_missing_folder(ws, tmp_path, kb):
    result = kb("-w", ws, "import-docs", tmp_path / "nope")
    assert result.exit_code == 1
    assert f"Error: the docs folder '{tmp_path / 'nope'}' does not exist" in result.stderr
    assert "Hint: Pass the folder holding the Markdown documentation" in result.stderr
    with pytest.raises(NotFoundError):
        do_import(ws, tmp_path / "nope")


def test_folder_without_markdown(ws, tmp_path, kb):
    docs = write_docs(tmp_path / "docs", {"notes.txt": "plain text", "LICENSE": "Apache"})
    result = kb("-w", ws, "import-docs", docs)
    assert result.exit_code == 1
    assert f"Error: no Markdown files (*.md, *.markdown) in '{docs}'" in result.stderr
    assert list((ws / "atoms").rglob("*")) == []


def test_file_instead_of_folder(ws, tmp_path, kb):
    docs = write_docs(tmp_path / "docs", {"a.md": TYPED_DOCS["pitfall"]})
    result = kb("-w", ws, "import-docs", docs / "a.md")
    assert result.exit_code == 1
    assert f"Error: '{docs / 'a.md'}' is a file, not a folder" in result.stderr


def test_non_utf8_file_names_file_and_line_and_writes_nothing(ws, tmp_path, kb):
    docs = write_docs(
        tmp_path / "docs",
        {"a.md": TYPED_DOCS["pitfall"], "b.md": "# Title\n\nfine line\ncaf\xe9 in latin-1\n".encode("latin-1")},
    )
    result = kb("-w", ws, "import-docs", docs)
    assert result.exit_code == 1
    assert f"Error: {docs / 'b.md'}:4:4: byte 0xe9 is not UTF-8 (offset 22)" in result.stderr
    assert "Hint: Re-save the file as UTF-8." in result.stderr
    assert list((ws / "atoms").rglob("*")) == []  # a.md was fine, but nothing is half-imported


def test_broken_front_matter_names_file_and_line(ws, tmp_path):
    docs = write_docs(tmp_path / "docs", {"a.md": "---\ntitle: x\ntags: [a, b\n---\n# A\n\ntext\n"})
    with pytest.raises(InputError) as exc:
        do_import(ws, docs)
    assert exc.value.path == str(docs / "a.md") and exc.value.line == 4
    assert "the document's YAML front matter does not parse" in exc.value.message
    assert list((ws / "atoms").rglob("*")) == []


def test_empty_documents_are_skipped_with_a_note(ws, tmp_path):
    docs = write_docs(
        tmp_path / "docs", {"a.md": TYPED_DOCS["pitfall"], "empty.md": "", "heads.md": "# Only\n\n## Headings\n"}
    )
    report, reporter = do_import(ws, docs)
    assert report.documents == 3 and len(all_atoms(ws)) == 1
    assert ("info", "skipped empty.md: no text under its headings") in reporter.lines
    assert ("info", "skipped heads.md: no text under its headings") in reporter.lines


def test_docs_with_no_text(ws, tmp_path):
    docs = write_docs(tmp_path / "docs", {"a.md": "# Only a heading\n\n## And another\n"})
    with pytest.raises(InputError) as exc:
        do_import(ws, docs)
    assert "hold no text to import" in exc.value.message


def test_progress_goes_through_the_reporter(ws, tmp_path):
    seen = []

    class Recording(Reporter):
        def progress(self, items, description, total=None):
            seen.append((description, total))
            yield from items

    docs = write_docs(tmp_path / "docs", GUIDE)
    import_docs.run(Settings.load(ws), Workspace.at(ws), Recording(), docs)
    assert seen == [("reading documents", 3), ("writing atoms", 3)]


def test_heading_lines_count_the_front_matter(ws, tmp_path):
    doc = "---\ntitle: Page title\nweight: 1\n---\n\n# Heading here\n\nSome text about the heading here.\n"
    docs = write_docs(tmp_path / "docs", {"p.md": doc})
    do_import(ws, docs)
    (atom,) = all_atoms(ws).values()
    assert [(s.heading, s.line) for s in atom.meta.sources] == [("Heading here", 6)]


def test_type_change_moves_an_unedited_atom(ws, tmp_path):
    docs = write_docs(tmp_path / "docs", {"tips.md": TYPED_DOCS["troubleshooting-tip"]})
    do_import(ws, docs)
    old = ws / "atoms" / "troubleshooting-tip" / "finding-the-slow-repository.md"
    assert old.is_file()
    steps = (
        "\n\n1. Open the repo server logs.\n2. Sort by duration.\n3. Note the repository.\n4. Move its large files.\n"
    )
    (docs / "tips.md").write_text((docs / "tips.md").read_text() + steps, encoding="utf-8")
    report, _ = do_import(ws, docs, today=DAY2)
    new = ws / "atoms" / "procedure" / "finding-the-slow-repository.md"
    assert not old.exists() and new.is_file()
    (change,) = [c for c in report.changes if c.action == "update"]
    assert change.note == "type changed: moved from atoms/troubleshooting-tip/finding-the-slow-repository.md"
    assert atoms.read(new).meta.version == 2
    assert check_errors(ws) == []


def test_one_giant_paragraph_is_cut_between_sentences(ws, tmp_path):
    sentence = "The repo server renders every manifest again when the cache expires."
    paragraph = " ".join([sentence] * 200)  # 2200 words on one line
    docs = write_docs(tmp_path / "docs", {"wall.md": f"# Wall of text\n\n{paragraph}\n"})
    do_import(ws, docs)
    found = all_atoms(ws)
    assert len(found) == 3
    assert all(atoms.word_count(a.body) <= 800 for a in found.values())
    assert sum(a.body.count(sentence) for a in found.values()) == 200
    assert check_errors(ws) == []


def test_section_with_a_broken_yaml_block_is_not_a_config_template(ws, tmp_path):
    block = "\n".join(f"key{i}: [unclosed {i}" for i in range(40))
    docs = write_docs(tmp_path / "docs", {"cfg.md": f"# Controller settings file\n\n```yaml\n{block}\n```\n"})
    do_import(ws, docs)
    (atom,) = all_atoms(ws).values()
    assert atom.meta.type != "config-template"
    assert check_errors(ws) == []


def test_atom_deleted_by_a_person_is_not_recreated(ws, tmp_path, kb):
    entries = "\n\n".join(f"## Pull fails with `manifest unknown: tag {n}`\n\nPush the tag first." for n in (1, 2, 3))
    docs = write_docs(tmp_path / "docs", {"errors.md": f"# Registry errors\n\n{entries}\n"})
    do_import(ws, docs)
    path = ws / "atoms" / "error" / "pull-fails-with-manifest-unknown-tag-2.md"
    assert (
        "Pull fails with manifest unknown: tag 2"
        in atoms.read(ws / "atoms/error/pull-fails-with-manifest-unknown-tag-1.md").meta.related
    )
    path.unlink()
    result = kb("-w", ws, "import-docs", docs)
    assert result.exit_code == 0, result.stderr
    assert not path.exists()
    assert (
        "not recreated: atoms/error/pull-fails-with-manifest-unknown-tag-2.md  (deleted since the last import)"
        in result.stdout
    )
    report, _ = do_import(ws, docs)
    assert report.ids("deleted") == ["pull-fails-with-manifest-unknown-tag-2"] and not path.exists()
    assert atoms.read(ws / "atoms/error/pull-fails-with-manifest-unknown-tag-1.md").meta.related == [
        "Pull fails with manifest unknown: tag 3"
    ]
    assert check_errors(ws) == []  # no related title names the deleted atom


def test_collapsible_admonitions_and_content_tabs(ws, tmp_path):
    doc = """
        # Install the CLI

        ???+ tip inline end "Faster"
            Use the package manager.

        === "Linux"

            ```bash
            curl -sSL -o argocd https://example.com/argocd-linux-amd64
            ```

        === "macOS"

            ```bash
            brew install argocd
            ```

        After installing, run `argocd version` to see the client version.
        """
    docs = write_docs(tmp_path / "docs", {"cli.md": doc})
    do_import(ws, docs)
    (atom,) = all_atoms(ws).values()
    assert "> **Tip:** Faster\n> Use the package manager." in atom.body
    assert "**Linux**\n\n```bash\ncurl -sSL -o argocd https://example.com/argocd-linux-amd64\n```" in atom.body
    assert "**macOS**\n\n```bash\nbrew install argocd\n```" in atom.body
    _, _, code = atoms.parse_body(atom.body)
    assert [b.lang for b in code] == ["bash", "bash"]  # real fenced blocks, not indented code


def test_indented_code_past_the_hard_cap_is_cut(ws, tmp_path):
    code = "\n".join(f"    line {i} of a long indented listing here" for i in range(250))  # 2000 words
    docs = write_docs(tmp_path / "docs", {"listing.md": f"# Listing\n\nThe whole output:\n\n{code}\n"})
    report, _ = do_import(ws, docs)
    assert any("code_block was cut in parts" in n for n in report.notes)
    assert all(atoms.word_count(a.body) <= 1500 for a in all_atoms(ws).values())
    assert check_errors(ws) == []


def test_importing_a_second_tree_does_not_claim_the_first_trees_atoms(tmp_path, kb):
    """Two doc trees with a document of the same relative path: neither reports the other's atoms as vanished."""
    ws = tmp_path / "ws"
    assert kb("init", ws).exit_code == 0
    for name, text in (
        ("a", "# Alpha\n\n## Restart the controller\n\nRun the restart command and wait.\n"),
        ("b", "# Beta\n\n## Clear the cache\n\nDelete the cache folder and retry.\n"),
    ):
        (tmp_path / name).mkdir()
        (tmp_path / name / "guide.md").write_text(text)
    assert kb("-w", ws, "import-docs", tmp_path / "a").exit_code == 0
    assert kb("-w", ws, "import-docs", tmp_path / "a").exit_code == 0  # state file now recorded
    second = kb("-w", ws, "import-docs", tmp_path / "b")
    assert second.exit_code == 0, second.stderr
    assert "vanished" not in (second.stdout + second.stderr)
    again = kb("-w", ws, "import-docs", tmp_path / "a")
    assert "vanished" not in (again.stdout + again.stderr)
