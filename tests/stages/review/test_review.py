"""``kb review`` through the CLI on a git workspace: the queue's order, accept, reject, promote.

The workspace holds real extractive atoms (the Ship It! #59 excerpt, see tests/data/ATTRIBUTION.md);
git is the audit log, so the commits must show who promoted what.
"""

from __future__ import annotations

import json
import subprocess

from pipeline import atoms
from tests.fakes.distill_model import excerpt, make_workspace


def git(root, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


def _git_ws(tmp_path):
    root = make_workspace(tmp_path / "ws", {"ship-it-59": excerpt()})
    git(root, "init", "-q")
    git(root, "config", "user.name", "Rita Reviewer")
    git(root, "config", "user.email", "rita@example.org")
    return root


def _distilled(kb, root):
    assert kb("-w", root, "distill").exit_code == 0
    git(root, "add", "-A")
    git(root, "commit", "-qm", "distilled")
    return sorted((root / "atoms").rglob("*.md"))


def _edit_answer(path):
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("**A:**", "**A:** (Reviewed.)", 1), encoding="utf-8")


def test_reviewer_only_edits_make_no_proposal(tmp_path, kb):
    root = _git_ws(tmp_path)
    path = _distilled(kb, root)[0]
    atom = atoms.read(path)
    meta = atom.meta.model_copy(update={"title": "A reviewer's better title", "tags": ["mine"], "status": "in-review"})
    atoms.write(path, meta, atom.body)
    forced = kb("-w", root, "distill", "--force")
    assert forced.exit_code == 0 and "0 proposal(s)" in forced.stdout
    assert not list((root / "atoms").rglob("*.proposed.md"))


def test_queue_order_accept_reject_promote_round_trip(tmp_path, kb):
    root = _git_ws(tmp_path)
    edited = _distilled(kb, root)[0]
    assert kb("-w", root, "new", "faq", "Hand written notes").exit_code == 0
    other = root / "atoms" / "faq" / "hand-written-notes.md"
    _edit_answer(edited)
    # kb's version changes too (a new setting), so a proposal is written beside the edited atom
    (root / "kb.yaml").write_text("distill:\n  answer_max_words: 120\n", encoding="utf-8")
    assert "1 proposal(s)" in kb("-w", root, "distill", "--force").stdout
    proposal = edited.with_name(edited.stem + ".proposed.md")
    assert proposal.is_file()
    git(root, "add", "-A")
    git(root, "commit", "-qm", "edits and kb's proposal")
    # validated without reviewers is an error: that atom comes first, then the findings and proposals
    text = other.read_text(encoding="utf-8")
    other.write_text(text.replace("status: draft", "status: validated", 1), encoding="utf-8")
    listed = kb("-w", root, "review", "--json")
    assert listed.exit_code == 0, listed.stderr
    queue = json.loads(listed.stdout)
    assert [(q["atom_id"], q["bucket"]) for q in queue][0] == (other.stem, "errors")
    mine = next(q for q in queue if q["atom_id"] == edited.stem)
    assert mine["proposal"] and mine["bucket"] in ("findings", "proposal") and all(q["reasons"] for q in queue)
    human = kb("-w", root, "review")
    assert "kb proposes a new version" in human.stdout and "validated-unreviewed" in human.stdout
    shown = kb("-w", root, "review", "show", edited.stem)
    assert shown.exit_code == 0 and "+++ " in shown.stdout and "(Reviewed.)" in shown.stdout

    # reject: the proposal goes and is not written again
    rejected = kb("-w", root, "review", "reject", edited.stem, "--commit")
    assert rejected.exit_code == 0, rejected.stderr
    assert not proposal.exists()
    again = kb("-w", root, "distill", "--force")
    assert "0 proposal(s)" in again.stdout and not proposal.exists()

    # accept: kb's content, the reviewer's title kept
    atom = atoms.read(edited)
    atoms.write(
        edited, atom.meta.model_copy(update={"title": "Reviewer's title"}), atom.body.replace("(Reviewed.)", "(Twice.)")
    )
    (root / "kb.yaml").write_text("", encoding="utf-8")  # kb's version is its first one again
    assert "1 proposal(s)" in kb("-w", root, "distill", "--force").stdout
    accepted = kb("-w", root, "review", "accept", edited.stem, "--commit")
    assert accepted.exit_code == 0, accepted.stderr
    merged = atoms.read(edited)
    assert merged.meta.title == "Reviewer's title" and "(Twice.)" not in merged.body
    assert merged.meta.version == atom.meta.version + 1 and not proposal.exists()

    # promote: refused with errors, then with needs, then done and committed with the reviewer's name
    assert kb("-w", root, "review", "promote", other.stem, "--to", "in-review").exit_code == 1
    promoted = kb("-w", root, "review", "promote", edited.stem, "--to", "in-review", "--commit")
    assert promoted.exit_code == 0, promoted.stderr
    meta = atoms.read(edited).meta
    assert meta.status == "in-review" and meta.reviewed_by == ["Rita Reviewer"]
    by = kb("-w", root, "review", "promote", edited.stem, "--to", "validated", "--by", "Sam Second", "--commit")
    if meta.needs:
        assert by.exit_code == 1 and "needs" in by.stderr
        atoms.write(edited, meta.model_copy(update={"needs": []}), atoms.read(edited).body)
        by = kb("-w", root, "review", "promote", edited.stem, "--to", "validated", "--by", "Sam Second", "--commit")
    assert by.exit_code == 0, by.stderr
    assert atoms.read(edited).meta.reviewed_by == ["Rita Reviewer", "Sam Second"]
    log = git(root, "log", "--format=%an|%s")
    assert f"Sam Second|kb review: promote {edited.stem} to validated (by Sam Second)" in log
    assert f"Rita Reviewer|kb review: promote {edited.stem} to in-review (by Rita Reviewer)" in log
    assert (
        f"kb review: accept proposal for {edited.stem}" in log
        and f"kb review: reject proposal for {edited.stem}" in log
    )


def test_kb_init_makes_a_git_repository_and_commits_when_it_knows_who(tmp_path, kb, monkeypatch):
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    anonymous = tmp_path / "anon.gitconfig"
    anonymous.write_text("", encoding="utf-8")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(anonymous))
    monkeypatch.delenv("GIT_AUTHOR_NAME", raising=False)
    monkeypatch.delenv("GIT_COMMITTER_NAME", raising=False)
    monkeypatch.setenv("EMAIL", "")
    first = kb("init", tmp_path / "one")
    assert first.exit_code == 0 and "no git identity is configured" in first.stderr
    assert (tmp_path / "one" / ".git").is_dir()
    assert (
        subprocess.run(["git", "-C", str(tmp_path / "one"), "rev-parse", "HEAD"], capture_output=True).returncode != 0
    )

    known = tmp_path / "known.gitconfig"
    known.write_text("[user]\n\tname = Ivy Interviewer\n\temail = ivy@example.org\n", encoding="utf-8")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(known))
    second = kb("init", tmp_path / "two")
    assert second.exit_code == 0 and "committed the scaffold as Ivy Interviewer" in second.stderr
    assert "Ivy Interviewer|kb init: workspace scaffold" in git(tmp_path / "two", "log", "--format=%an|%s")
    assert git(tmp_path / "two", "status", "--porcelain") == ""  # everything kb wrote is committed

    inside = kb("init", tmp_path / "two" / "nested")
    assert inside.exit_code == 0 and "inside an existing git repository" in inside.stderr
    assert not (tmp_path / "two" / "nested" / ".git").exists()
