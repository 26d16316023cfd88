"""The hostile-file cases: each puts one corpus file (or a generated one) into a fresh workspace,
runs one kb command and says what must come out (exit code, a regex over the output).

``WS`` in argv is the workspace, ``OUT`` the folder beside it holding ``secret.md`` (nothing may
read it), ``FILE`` the case's file inside the workspace. ``dest`` is where the file goes.
"""

from __future__ import annotations

from dataclasses import dataclass

LIMIT = r"(limit|refused|over the limit)"


@dataclass(frozen=True)
class Case:
    name: str
    source: str  # a file of tests/hostile/files/, or "gen:<name>" (made by worker.GENERATORS)
    dest: str
    argv: tuple[str, ...]
    code: int
    message: str  # regex searched in stdout + stderr


def _atom(name: str, code: int, message: str, cmd: str = "check") -> Case:
    return Case(f"{cmd}-{name}", f"{name}.md", f"atoms/faq/{name}.md", (cmd,), code, message)


CASES: list[Case] = [
    # front matter, through kb check (exit 3, a finding) and kb export (exit 1, Error/Hint)
    _atom("atom-billion-laughs", 3, r"yaml-syntax.*(aliases|expand)"),
    _atom("atom-billion-laughs", 1, r"Error: .*atom-billion-laughs.md:\d+: .*aliases", "export"),
    _atom("atom-recursive-alias", 3, r"refers to itself"),
    _atom("atom-recursive-alias", 1, r"Error: .*refers to itself", "export"),
    _atom("atom-deep-flow", 3, r"yaml-syntax.*(nest|depth)"),
    _atom("atom-deep-flow", 1, r"Error: .*(nest|depth)", "export"),
    _atom("atom-deep-block", 3, r"yaml-syntax.*nested more than"),
    _atom("atom-merge-bomb", 3, r"yaml-syntax"),
    _atom("atom-many-aliases", 3, r"yaml-syntax.*more than 20 aliases"),
    _atom("atom-undefined-alias", 3, r"yaml-syntax.*undefined alias"),
    _atom("atom-python-tag", 3, r"yaml-syntax.*(python/object|could not determine a constructor)"),
    _atom("atom-python-tag", 1, r"Error: .*(python/object|constructor)", "export"),
    _atom("atom-surrogate", 3, r"yaml-syntax.*(surrogate|escape)"),
    _atom("atom-nul", 3, r"(not-utf8|yaml-syntax|NUL|control|special characters|unknown-field|too-short)"),
    _atom("atom-not-utf8", 3, r"not-utf8"),
    _atom("atom-not-utf8", 1, r"Error: .*not UTF-8", "export"),
    _atom("atom-long-line", 3, r"yaml-syntax.*bytes \(limit"),
    _atom("atom-huge-number", 3, r"yaml-syntax.*number with 5,000 characters"),
    _atom("atom-empty", 3, r"no-front-matter"),
    _atom("atom-only-fences", 3, r"empty-front-matter"),
    _atom("atom-binary", 3, r"not-utf8"),
    Case(
        "check-atom-huge",
        "gen:atom-50mb",
        "atoms/faq/atom-huge.md",
        ("check",),
        3,
        r"too-large.*limits\.max_atom_bytes",
    ),
    Case(
        "export-atom-huge",
        "gen:atom-50mb",
        "atoms/faq/atom-huge.md",
        ("export",),
        1,
        r"Error: .*limits\.max_atom_bytes",
    ),
    Case("check-symlink-outside", "gen:symlink-outside", "atoms/faq/linked.md", ("check",), 3, r"outside-workspace"),
    Case(
        "export-symlink-outside",
        "gen:symlink-outside",
        "atoms/faq/linked.md",
        ("export",),
        1,
        r"Error: atom .* outside the workspace",
    ),
    # config-template blocks
    Case(
        "check-config-yaml-bomb",
        "config-yaml-bomb.md",
        "atoms/config-template/config-yaml-bomb.md",
        ("check",),
        3,
        r"config-parse.*refused",
    ),
    Case(
        "check-config-json-deep",
        "config-json-deep.md",
        "atoms/config-template/config-json-deep.md",
        ("check",),
        3,
        r"config-parse.*nested",
    ),
    Case(
        "check-config-json-number",
        "config-json-number.md",
        "atoms/config-template/config-json-number.md",
        ("check",),
        3,
        r"config-parse.*characters",
    ),
    Case(
        "check-config-yaml-recursive",
        "config-yaml-recursive.md",
        "atoms/config-template/config-yaml-recursive.md",
        ("check",),
        3,
        r"config-parse.*itself",
    ),
    # kb.yaml: every command reads it
    Case("kbyaml-bomb", "kb-bomb.yaml", "kb.yaml", ("check",), 1, r"Error: .*kb.yaml.*(aliases|expand)"),
    Case(
        "kbyaml-javascript-url",
        "kb-javascript-url.yaml",
        "kb.yaml",
        ("check",),
        1,
        r"Error: Invalid setting 'site.repo_url'.*http",
    ),
    Case("kbyaml-data-url", "kb-data-url.yaml", "kb.yaml", ("site",), 1, r"Error: Invalid setting 'site.repo_url'"),
    Case(
        "kbyaml-edit-uri-js", "kb-edit-uri-js.yaml", "kb.yaml", ("check",), 1, r"Error: Invalid setting 'site.edit_uri'"
    ),
    Case("kbyaml-not-mapping", "kb-not-mapping.yaml", "kb.yaml", ("check",), 1, r"Error: .*must be a mapping"),
    Case(
        "kbyaml-bad-limit",
        "kb-huge-limit.yaml",
        "kb.yaml",
        ("check",),
        1,
        r"Error: Invalid setting 'limits.max_atom_bytes'",
    ),
    # interview.yaml through kb transcribe
    Case(
        "transcribe-interview-bomb",
        "interview-bomb.yaml",
        "interviews/hostile/interview.yaml",
        ("transcribe", "hostile"),
        1,
        r"Error: .*interview.yaml:\d+: .*(aliases|expand)",
    ),
    Case(
        "transcribe-outside-transcript",
        "interview-outside-transcript.yaml",
        "interviews/hostile/interview.yaml",
        ("transcribe", "hostile"),
        1,
        r"Error: .*outside the workspace",
    ),
    Case(
        "transcribe-absolute-transcript",
        "interview-absolute-transcript.yaml",
        "interviews/hostile/interview.yaml",
        ("transcribe", "hostile"),
        1,
        r"Error: .*outside the workspace",
    ),
    Case(
        "transcribe-interview-deep",
        "interview-deep.yaml",
        "interviews/hostile/interview.yaml",
        ("transcribe", "hostile"),
        1,
        r"Error: .*(nest|depth)",
    ),
    Case(
        "transcribe-symlinked-transcript",
        "gen:symlinked-transcript",
        "interviews/hostile/interview.yaml",
        ("transcribe", "hostile"),
        1,
        r"Error: .*outside the workspace",
    ),
    # kb add: transcripts
    *[
        Case(f"add-{name}", name, f"incoming/{name}", ("add", "FILE"), 1, message)
        for name, message in [
            ("whisper-deep.json", r"Error: .*nested more than"),
            ("whisper-huge-number.json", r"Error: .*number with 5,000 characters"),
            ("whisper-surrogate.json", r"Error: .*surrogate"),
            ("whisper-nan.json", r"Error: .*"),
            ("whisper-top-string.json", r"Error: .*not a whisper"),
            ("whisper-truncated.json", r"Error: .*not valid JSON"),
            ("whisper-wrong-types.json", r"Error: .*not a whisper"),
            ("whisper-negative.json", r"Error: .*not a whisper"),
            ("whisper-null-segments.json", r"Error: .*not a whisper"),
            ("whisper-binary.json", r"Error: .*not UTF-8"),
            ("vtt-no-header.vtt", r"Error: .*first line must be 'WEBVTT'"),
            ("vtt-broken-timing.vtt", r"Error: .*:6: broken cue timing"),
            ("vtt-end-before-start.vtt", r"Error: .*ends .* before it starts"),
            ("vtt-not-utf8.vtt", r"Error: .*not UTF-8"),
            ("vtt-only-tags.vtt", r"Error: .*holds no text"),
            ("srt-garbage.srt", r"Error: .*"),
            ("txt-empty.txt", r"Error: .*empty"),
            ("md-binary.md", r"Error: .*not UTF-8"),
            ("fake-recording.wav", r"Error: .*"),
        ]
    ],
    Case(
        "add-vtt-1m-cues",
        "gen:vtt-1m-cues",
        "incoming/big.vtt",
        ("add", "FILE"),
        1,
        r"Error: .*limits\.(max_cues|max_transcript_bytes)",
    ),
    Case(
        "add-whisper-1m-segments",
        "gen:whisper-1m-segments",
        "incoming/big.json",
        ("add", "FILE"),
        1,
        r"Error: .*limits\.(max_segments|max_transcript_bytes)",
    ),
    Case(
        "add-whisper-2m-words",
        "gen:whisper-2m-words",
        "incoming/words.json",
        ("add", "FILE"),
        1,
        r"Error: .*limits\.(max_words|max_transcript_bytes)",
    ),
    # NUL in cue text reads as U+FFFD, as the spec says (no crash, no lost cue)
    Case(
        "add-vtt-nul", "vtt-nul.vtt", "incoming/vtt-nul.vtt", ("add", "FILE"), 0, r"transcript vtt-nul.vtt \(copied\)"
    ),
    # real inputs stay accepted under the budgets
    Case(
        "add-vtt-5000-cues",
        "gen:vtt-5000-cues",
        "incoming/real.vtt",
        ("add", "FILE", "--id", "real-size"),
        0,
        r"real-size: speakers in the transcript: Natalie Pistunovich, .*Gerhard Lazu",
    ),
    Case(
        "add-reference-outside-then-transcribe",
        "gen:vtt-5000-cues",
        "TYPED/real.vtt",
        ("add", "FILE", "--id", "ref", "--reference", "&&", "transcribe", "ref"),
        0,
        r"ref: .*5,?000|transcribed",
    ),
    # the command line
    Case("ask-not-utf8-argument", "", "", ("ask", "caf\udce9 question"), 1, r"Error: .*not valid UTF-8"),
]
