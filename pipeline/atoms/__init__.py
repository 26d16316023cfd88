"""Atom files: Markdown + YAML front matter <-> ``Atom``. The only package importing python-frontmatter.

Reviewers own these files, so writing is conservative:
- a file read and written back unchanged is byte-identical;
- when only some front-matter keys change, the other keys keep their original text (key order,
  quoting, comments), so git diffs show exactly what changed;
- ``generator.content_hash`` fingerprints what the pipeline wrote, so a later run can tell that
  a person has edited the atom and must not overwrite it.

One module per job: ``front`` (split + YAML with lines), ``body`` (sections, FAQ, code blocks),
``reading`` (parse, read), ``writing`` (render, write), ``edits`` (fingerprints, human edits),
``skeletons`` (ids, ``kb new``). Callers import from ``pipeline.atoms``.
"""

from __future__ import annotations

from pipeline.atoms.body import CodeBlock, parse_body, parse_faq, word_count
from pipeline.atoms.edits import REVIEWER_FIELDS, content_key, fingerprint, is_human_edited, stamp
from pipeline.atoms.front import FRONT_MATTER_LIMITS, RawAtom, YamlLoader, line_of, load_yaml, split
from pipeline.atoms.reading import parse, read, read_bytes
from pipeline.atoms.skeletons import skeleton, slugify
from pipeline.atoms.writing import dump_yaml, meta_to_data, render, write

__all__ = [
    "FRONT_MATTER_LIMITS",
    "REVIEWER_FIELDS",
    "CodeBlock",
    "RawAtom",
    "YamlLoader",
    "content_key",
    "dump_yaml",
    "fingerprint",
    "is_human_edited",
    "line_of",
    "load_yaml",
    "meta_to_data",
    "parse",
    "parse_body",
    "parse_faq",
    "read",
    "read_bytes",
    "render",
    "skeleton",
    "slugify",
    "split",
    "stamp",
    "word_count",
    "write",
]
