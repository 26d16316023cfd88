"""Writes tests/hostile/files/: the hostile-input corpus (small files; big ones are made at test time).

Run it again after changing a generator: ``python tests/hostile/make_corpus.py``. Every file is
written for kb (CC0). Each file is one case in ``cases.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).parent / "files"

FRONT = 'id: {id}\ntitle: "Hostile {id}"\ntype: faq\ncreated: 2026-03-04\nstatus: draft\n'
BODY = "Context.\n\n## FAQ\n\n**Q:** Why?\n**A:** Because.\n"


def atom(atom_id: str, extra: str = "", body: str = BODY) -> str:
    return "---\n" + FRONT.format(id=atom_id) + extra + "---\n" + body


def laughs(levels: int, width: int, anchor: str = "l") -> str:
    out = f"{anchor}0: &{anchor}0 [{', '.join(['lol'] * width)}]\n"
    for i in range(1, levels):
        refs = ", ".join([f"*{anchor}{i - 1}"] * width)
        out += f"{anchor}{i}: &{anchor}{i} [{refs}]\n"
    return out


def config_atom(atom_id: str, lang: str, block: str) -> str:
    return (
        "---\n" + FRONT.format(id=atom_id).replace("type: faq", "type: config-template") + "---\n"
        "A template.\n\n## Template\n\n```" + lang + "\n" + block + "\n```\n\n## FAQ\n\n**Q:** Where?\n**A:** Here.\n"
    )


def vtt(cues: list[tuple[str, str]]) -> str:
    return "WEBVTT\n\n" + "".join(f"{t}\n{x}\n\n" for t, x in cues)


def whisper(segments: object) -> str:
    return json.dumps({"segments": segments})


SEG = {"start": 0.0, "end": 1.0, "text": "hello there"}


def files() -> dict[str, str | bytes]:
    deep_yaml = "deep: " + "[" * 5000 + "]" * 5000 + "\n"
    merge_bomb = (
        "base: &b {"
        + ", ".join(f"k{i}: v" for i in range(50))
        + "}\n"
        + "".join(f"m{i}: {{<<: *b}}\n" for i in range(30))
    )
    f: dict[str, str | bytes] = {
        # atoms: YAML in front matter
        "atom-billion-laughs.md": atom("atom-billion-laughs", laughs(9, 9)),
        "atom-recursive-alias.md": atom("atom-recursive-alias", "loop: &a [*a]\n"),
        "atom-deep-flow.md": atom("atom-deep-flow", deep_yaml),
        "atom-deep-block.md": atom(
            "atom-deep-block", "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "x: 1\n"
        ),
        "atom-merge-bomb.md": atom("atom-merge-bomb", merge_bomb),
        "atom-many-aliases.md": atom("atom-many-aliases", "a: &a x\nrefs: [" + ", ".join(["*a"] * 500) + "]\n"),
        "atom-undefined-alias.md": atom("atom-undefined-alias", "tags: [*nothing]\n"),
        "atom-python-tag.md": atom("atom-python-tag", "x: !!python/object/apply:os.system ['echo pwned']\n"),
        "atom-surrogate.md": atom("atom-surrogate", 'summary: "half \\ud800 of a pair"\n'),
        "atom-nul.md": atom("atom-nul", "summary: a NUL \x00 in the front matter\n"),
        "atom-not-utf8.md": atom("atom-not-utf8").encode() + b"\xff\xfe broken\n",
        "atom-long-line.md": atom("atom-long-line", "summary: " + "a" * 300_000 + "\n"),
        "atom-huge-number.md": atom("atom-huge-number", "version: " + "9" * 5000 + "\n"),
        "atom-empty.md": "",
        "atom-only-fences.md": "---\n---\n",
        "atom-binary.md": bytes(range(256)) * 4,
        # config-template blocks
        "config-yaml-bomb.md": config_atom("config-yaml-bomb", "yaml", laughs(9, 9).rstrip()),
        "config-json-deep.md": config_atom("config-json-deep", "json", "[" * 20_000 + "]" * 20_000),
        "config-json-number.md": config_atom("config-json-number", "json", '{"n": ' + "1" * 5000 + "}"),
        "config-yaml-recursive.md": config_atom("config-yaml-recursive", "yaml", "a: &a\n  b: *a"),
        # kb.yaml
        "kb-bomb.yaml": "threads: 1\n" + laughs(9, 9, "k"),
        "kb-javascript-url.yaml": 'site:\n  repo_url: "javascript:alert(document.cookie)"\n',
        "kb-data-url.yaml": 'site:\n  repo_url: "data:text/html,<script>alert(1)</script>"\n',
        "kb-edit-uri-js.yaml": 'site:\n  repo_url: "https://example.org/r"\n  edit_uri: "javascript:alert(1)//"\n',
        "kb-not-mapping.yaml": "- just\n- a list\n",
        "kb-huge-limit.yaml": "limits:\n  max_atom_bytes: -5\n",
        # interview.yaml (kb transcribe)
        "interview-bomb.yaml": "id: hostile\ntitle: Bomb\ndate: 2026-03-04\n" + laughs(9, 9, "i"),
        "interview-outside-transcript.yaml": (
            "id: hostile\ntitle: Outside\ndate: 2026-03-04\nmedia:\n  - kind: transcript\n"
            "    file: ../../../outside/secret.md\n    sha256: '"
            + "0" * 64
            + "'\n    bytes: 10\n    format: markdown\n"
        ),
        "interview-absolute-transcript.yaml": (
            "id: hostile\ntitle: Absolute\ndate: 2026-03-04\nmedia:\n  - kind: transcript\n"
            "    file: OUTSIDE/secret.md\n    sha256: '" + "0" * 64 + "'\n    bytes: 10\n    format: markdown\n"
        ),
        "interview-deep.yaml": "id: hostile\ntitle: Deep\ndate: 2026-03-04\ntopics: " + "[" * 3000 + "]" * 3000 + "\n",
        # transcripts for kb add
        "whisper-deep.json": '{"segments": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "whisper-huge-number.json": '{"segments": [{"start": ' + "1" * 5000 + ', "end": 2, "text": "x"}]}',
        "whisper-surrogate.json": '{"segments": [{"start": 0, "end": 1, "text": "half \\ud800 pair"}]}',
        "whisper-nan.json": '{"segments": [{"start": NaN, "end": Infinity, "text": "x"}]}',
        "whisper-top-string.json": '"just a string"',
        "whisper-truncated.json": whisper([SEG] * 3)[:-7],
        "whisper-wrong-types.json": whisper([{"start": "soon", "end": [1], "text": {"a": 1}}]),
        "whisper-negative.json": whisper([{"start": -5, "end": -1, "text": "x"}]),
        "whisper-null-segments.json": '{"segments": null}',
        "whisper-binary.json": b"\x00\x01\x02\xff" * 64,
        "vtt-no-header.vtt": "00:00:01.000 --> 00:00:02.000\nhello\n",
        "vtt-broken-timing.vtt": vtt(
            [("00:00:01.000 --> 00:00:02.000", "ok"), ("00:00:0x.000 --> 00:00:03.000", "lost")]
        ),
        "vtt-end-before-start.vtt": vtt([("00:00:05.000 --> 00:00:01.000", "backwards")]),
        "vtt-not-utf8.vtt": b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\ncaf\xe9\n",
        "vtt-only-tags.vtt": vtt([("00:00:01.000 --> 00:00:02.000", "<c.x><b></b></c>")]),
        "vtt-nul.vtt": "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n\x00\x00\x00\n",
        "srt-garbage.srt": "1\nthis is not a timing line\nhello\n\n2\n00:00:01,000 --> nope\nx\n",
        "txt-empty.txt": "",
        "md-binary.md": b"\xff\xd8\xff\xe0" + bytes(200),
        # a recording that is not one
        "fake-recording.wav": b"RIFF\x00\x00\x00\x00WAVEfmt " + bytes(64),
    }
    return f


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    for name, data in files().items():
        (OUT / name).write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    print(f"{len(files())} files in {OUT}")


if __name__ == "__main__":
    main()
