"""What a first user gets wrong, run through the real CLI: each test is a bug once found by hand.

Exit codes (DESIGN.md): 0 ok, 1 a KbError (``Error:`` then ``Hint:``), 2 usage, 3 check errors.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import DATA

SHIP_IT = DATA / "transcripts" / "changelog" / "ship-it-21.md"


def _no_traceback(result) -> None:
    assert "Traceback" not in result.stdout + result.stderr


def test_no_workspace_here_is_an_error_and_writes_nothing(kb, tmp_path, monkeypatch):
    """Outside a workspace kb used the current folder and left dist/ and .kb/ there."""
    stray = tmp_path / "not-a-workspace"
    stray.mkdir()
    monkeypatch.chdir(stray)
    for command in (["export"], ["check"], ["run"], ["add", str(SHIP_IT)]):
        result = kb(*command)
        assert result.exit_code == 1, (command, result.stdout, result.stderr)
        assert "Error: No kb workspace here" in result.stderr and "Hint: " in result.stderr
        assert "kb init" in result.stderr
    assert list(stray.iterdir()) == []


def test_config_outside_a_workspace_shows_the_defaults(kb, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = kb("config")
    assert result.exit_code == 0, result.stderr
    assert '"threads": 1' in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_a_subfolder_of_a_workspace_finds_it(kb, workspace, monkeypatch):
    monkeypatch.chdir(workspace / "atoms")
    result = kb("check")
    assert result.exit_code == 0, result.stderr


def test_serve_port_out_of_range_is_a_usage_error(kb, workspace):
    """--port 99999 reached uvicorn and ended in an OverflowError traceback."""
    result = kb("-w", workspace, "serve", "--port", "99999")
    assert result.exit_code == 2
    assert "--port" in result.stderr
    _no_traceback(result)


@pytest.mark.parametrize("question", ["", "   "])
def test_ask_an_empty_question_is_a_usage_error(kb, workspace, question):
    result = kb("-w", workspace, "ask", question)
    assert result.exit_code == 2
    assert "question is empty" in result.stderr


def test_distill_lists_what_it_wrote_without_printing_diffs(kb, workspace):
    """Without --diff, kb distill printed the whole text of every new atom as a diff."""
    added = kb(
        "-w",
        workspace,
        "add",
        SHIP_IT,
        "--id",
        "ship-it-21",
        "--interviewer",
        "Gerhard Lazu",
        "--expert",
        "Stephen Whitworth",
        "--expert",
        "Chris Evans",
    )
    assert added.exit_code == 0, added.stderr
    assert kb("-w", workspace, "transcribe").exit_code == 0
    result = kb("-w", workspace, "distill", "--backend", "extractive")
    assert result.exit_code == 0, result.stderr
    written = sorted(Path(workspace, "atoms").rglob("*.md"))
    assert written
    assert "+++ " not in result.stdout and "@@ " not in result.stdout
    assert "created: atoms/faq/" in result.stdout + result.stderr
    # a hand edit is kept byte for byte; --diff shows the proposal and writes nothing
    target = written[0]
    edited = target.read_text(encoding="utf-8") + "\nA reviewer's note.\n"
    target.write_text(edited, encoding="utf-8")
    diff = kb("-w", workspace, "distill", "--backend", "extractive", "--force", "--diff")
    assert diff.exit_code == 0, diff.stderr
    assert "(proposed)" in diff.stdout
    assert not list(Path(workspace, "atoms").rglob("*.proposed.md"))
    again = kb("-w", workspace, "distill", "--backend", "extractive", "--force")
    assert again.exit_code == 0, again.stderr
    assert target.read_text(encoding="utf-8") == edited
    assert target.with_suffix(".proposed.md").is_file()


def test_a_transcript_that_is_not_utf8_is_refused_with_its_name(kb, workspace, tmp_path):
    bad = tmp_path / "call.vtt"
    bad.write_bytes(b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n<v Alice>caf\xe9\n")
    result = kb("-w", workspace, "add", bad, "--id", "latin1")
    assert result.exit_code == 1
    assert "call.vtt" in result.stderr and "Hint: " in result.stderr
    _no_traceback(result)
    assert not (workspace / "interviews" / "latin1").exists()


def test_an_empty_transcript_is_refused(kb, workspace, tmp_path):
    empty = tmp_path / "empty.srt"
    empty.write_text("", encoding="utf-8")
    result = kb("-w", workspace, "add", empty, "--id", "empty")
    assert result.exit_code == 1
    assert "empty.srt" in result.stderr
    _no_traceback(result)
    assert not (workspace / "interviews" / "empty").exists()


def test_check_an_empty_and_a_latin1_atom(kb, workspace):
    folder = workspace / "atoms" / "faq"
    (folder / "empty.md").write_text("", encoding="utf-8")
    (folder / "latin.md").write_bytes(b"---\nid: latin\ntitle: caf\xe9\n---\nbody\n")
    result = kb("-w", workspace, "check")
    assert result.exit_code == 3
    assert "no-front-matter" in result.stdout and "not-utf8" in result.stdout
    _no_traceback(result)


def test_import_docs_of_a_file_not_a_folder(kb, workspace):
    page = next(Path(DATA, "docs").rglob("*.md"))
    result = kb("-w", workspace, "import-docs", page)
    assert result.exit_code in (1, 2)
    _no_traceback(result)


def test_copy_of_demo_docs_imports_twice_unchanged(kb, workspace, tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(Path(__file__).parent.parent / "samples" / "docs", docs)
    first = kb("-w", workspace, "import-docs", docs)
    assert first.exit_code == 0, first.stderr
    before = {p: p.read_bytes() for p in (workspace / "atoms").rglob("*.md")}
    second = kb("-w", workspace, "import-docs", docs)
    assert second.exit_code == 0, second.stderr
    assert {p: p.read_bytes() for p in (workspace / "atoms").rglob("*.md")} == before


def test_distill_against_an_unreachable_llm_exits_1(kb, workspace, monkeypatch):
    """Every window failing (server down) ended in exit 0, so kb distill in CI looked green."""
    import socket

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("KB_LLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("KB_LLM_HTTP_RETRIES", "0")
    added = kb(
        "-w",
        workspace,
        "add",
        SHIP_IT,
        "--id",
        "ship-it-21",
        "--interviewer",
        "Gerhard Lazu",
        "--expert",
        "Stephen Whitworth",
        "--expert",
        "Chris Evans",
    )
    assert added.exit_code == 0, added.stderr
    assert kb("-w", workspace, "transcribe").exit_code == 0
    result = kb("-w", workspace, "distill", "--backend", "llm")
    assert result.exit_code == 1
    assert "Cannot reach the LLM endpoint" in result.stderr and "window(s) failed" in result.stderr
    assert "Hint: " in result.stderr and "API call failed" not in result.stderr
    assert not list(Path(workspace, "atoms").rglob("*.md"))


def test_site_with_a_bad_mkdocs_value_says_so(kb, workspace):
    """mkdocs logs a bad config value, then raises a bare Abort: kb exited 1 with no Error line."""
    with (workspace / "mkdocs.yml").open("a", encoding="utf-8") as f:
        f.write("dev_addr: nonsense\n")
    result = kb("-w", workspace, "site")
    assert result.exit_code == 1
    assert "Error: " in result.stderr and "dev_addr" in result.stderr and "Hint: " in result.stderr


def test_site_serve_on_a_taken_port_is_an_error(kb, workspace):
    """--dev-addr on a port in use ended in an OSError traceback."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = kb("-w", workspace, "site", "--serve", "--dev-addr", f"127.0.0.1:{port}")
    assert result.exit_code == 1
    assert "Could not serve the site" in result.stderr and "--dev-addr" in result.stderr
    _no_traceback(result)


def test_add_a_folder_says_it_is_a_folder(kb, workspace, tmp_path):
    result = kb("-w", workspace, "add", tmp_path)
    assert result.exit_code == 1
    assert "is a folder, not a file" in result.stderr


def test_cost_typos_are_errors(kb, workspace):
    """--format xml printed the table anyway (exit 0); --run with an unknown id said 'no runs yet'."""
    bad_format = kb("-w", workspace, "cost", "--format", "xml")
    assert bad_format.exit_code == 2 and "--format" in bad_format.stderr
    unknown = kb("-w", workspace, "cost", "--run", "20990101T000000-nosuch")
    assert unknown.exit_code == 1
    assert "No LLM run '20990101T000000-nosuch'" in unknown.stderr and "Hint: " in unknown.stderr


def _interview(kb, workspace) -> Path:
    added = kb(
        "-w",
        workspace,
        "add",
        SHIP_IT,
        "--id",
        "ship-it-21",
        "--interviewer",
        "Gerhard Lazu",
        "--expert",
        "Stephen Whitworth",
        "--expert",
        "Chris Evans",
    )
    assert added.exit_code == 0, added.stderr
    assert kb("-w", workspace, "transcribe").exit_code == 0
    return workspace / "interviews" / "ship-it-21"


@pytest.mark.parametrize("name", ["interview.yaml", "transcript.md"])
def test_a_latin1_byte_in_a_workspace_file_is_an_error_with_its_line(kb, workspace, name):
    """A non-UTF-8 byte in interview.yaml or transcript.md ended kb transcribe in a UnicodeDecodeError."""
    target = _interview(kb, workspace) / name
    before = (target.parent / "transcript.json").read_bytes()
    with target.open("ab") as f:
        f.write(b"# caf\xe9\n")
    result = kb("-w", workspace, "transcribe", "--force")
    assert result.exit_code == 1
    assert f"{name}:" in result.stderr and "UTF-8" in result.stderr and "Hint: " in result.stderr
    _no_traceback(result)
    assert (target.parent / "transcript.json").read_bytes() == before


def test_a_latin1_byte_in_kb_yaml_is_an_error_with_its_line(kb, workspace):
    with (workspace / "kb.yaml").open("ab") as f:
        f.write(b"# caf\xe9\n")
    result = kb("-w", workspace, "check")
    assert result.exit_code == 1
    assert "kb.yaml:" in result.stderr and "not UTF-8" in result.stderr
    _no_traceback(result)


def test_imported_links_wrapped_over_two_lines_are_made_readable(kb, workspace, tmp_path):
    """A relative link whose label wraps a line stayed a link, and broke the strict site build."""
    docs = tmp_path / "docs"
    (docs / "user-guide").mkdir(parents=True)
    (docs / "user-guide" / "helm.md").write_text(
        "# Helm\n\n## Value files\n\nMissing values files can be ignored, to implement a default/override\n"
        "pattern with [Application\nSets](./application-set.md) or the [sync\noptions](../sync.md#prune).\n",
        encoding="utf-8",
    )
    result = kb("-w", workspace, "import-docs", docs)
    assert result.exit_code == 0, result.stderr
    text = "\n".join(p.read_text(encoding="utf-8") for p in (workspace / "atoms").rglob("*.md"))
    assert "Application\nSets (user-guide/application-set.md)" in text
    assert "sync\noptions (sync.md#prune)" in text
    assert "](" not in text
    site = kb("-w", workspace, "site")
    assert site.exit_code == 0, site.stderr


def test_init_on_a_file_is_an_error(kb, tmp_path):
    """kb init FILE ended in a FileExistsError traceback."""
    target = tmp_path / "notes.txt"
    target.write_text("mine\n", encoding="utf-8")
    result = kb("init", target)
    assert result.exit_code == 1
    assert "is a file, not a folder" in result.stderr and "Hint: " in result.stderr
    _no_traceback(result)
    assert target.read_text(encoding="utf-8") == "mine\n"


def test_init_where_nothing_can_be_written_is_an_error(kb, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("", encoding="utf-8")
    result = kb("init", blocker / "ws")  # a folder under a file cannot be made, even as root
    assert result.exit_code == 1
    assert "Cannot create the workspace folder" in result.stderr
    _no_traceback(result)


@pytest.mark.parametrize("command", [["export", "--out"], ["schemas", "--out"]])
def test_writing_under_a_file_is_an_error_not_a_traceback(kb, workspace, tmp_path, command):
    """--out below a file ended in a FileExistsError traceback."""
    blocker = tmp_path / "blocker"
    blocker.write_text("mine\n", encoding="utf-8")
    result = kb("-w", workspace, *command, blocker / "sub" / ("kb.duckdb" if command[0] == "export" else "schemas"))
    assert result.exit_code == 1
    assert "Error: " in result.stderr and "blocker" in result.stderr and "Hint: " in result.stderr
    _no_traceback(result)
    assert blocker.read_text(encoding="utf-8") == "mine\n"


def test_distill_after_a_hand_edit_broke_an_atom_proposes_beside_it(kb, workspace):
    """An atom whose YAML a person broke was said to get only proposals, yet a duplicate '<id>-2' was created."""
    _interview(kb, workspace)
    assert kb("-w", workspace, "distill", "--backend", "extractive").exit_code == 0
    target = sorted((workspace / "atoms" / "faq").glob("*.md"))[0]
    broken = target.read_text(encoding="utf-8").replace("\ntitle: ", '\ntitle: "unterminated ', 1)
    target.write_text(broken, encoding="utf-8")
    before = sorted(p.name for p in (workspace / "atoms").rglob("*.md"))
    result = kb("-w", workspace, "distill", "--backend", "extractive", "--force")
    assert result.exit_code == 0, result.stderr
    assert "not readable" in result.stderr
    after = sorted(p.name for p in (workspace / "atoms").rglob("*.md"))
    assert set(after) - set(before) == {target.stem + ".proposed.md"}
    assert target.read_text(encoding="utf-8") == broken


def test_run_says_check_errors_as_errors(kb, workspace):
    """kb run printed a check error as 'warning: …' and then exited 3."""
    (workspace / "atoms" / "faq" / "broken.md").write_text('---\nid: broken\ntitle: "open\n---\n', encoding="utf-8")
    result = kb("-w", workspace, "run", "--only", "check")
    assert result.exit_code == 3
    assert "error: atoms/faq/broken.md:" in result.stderr
    assert "warning: atoms/faq/broken.md" not in result.stderr


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from bundle_support import export, make_workspace

    ws = make_workspace(tmp_path_factory.mktemp("journeys") / "ws")
    export(ws)
    return ws.root


def test_eval_questions_file_not_utf8_is_an_error(kb, exported, tmp_path):
    """A Latin-1 byte in the golden questions ended kb eval in a UnicodeDecodeError."""
    questions = tmp_path / "golden.jsonl"
    questions.write_bytes(
        b'{"question": "ok", "expected_atoms": ["a"]}\n{"question": "caf\xe9", "expected_atoms": ["a"]}\n'
    )
    result = kb("-w", exported, "eval", "--questions", questions)
    assert result.exit_code == 1
    assert "golden.jsonl:2" in result.stderr and "UTF-8" in result.stderr
    _no_traceback(result)


def test_eval_warns_about_an_expected_atom_the_bundle_lacks(kb, exported, tmp_path):
    """A typo in expected_atoms silently counted as a miss."""
    questions = tmp_path / "golden.jsonl"
    questions.write_text('{"question": "How do I reset it?", "expected_atoms": ["no-such-atom"]}\n', encoding="utf-8")
    result = kb("-w", exported, "eval", "--questions", questions)
    assert result.exit_code == 0, result.stderr
    assert "golden.jsonl:1: expected atom 'no-such-atom' is not in the bundle" in result.stderr
