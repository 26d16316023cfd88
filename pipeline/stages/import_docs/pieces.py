"""What ``kb import-docs`` cuts a document into: pieces made of units (whole sections or some blocks)."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.models import DocumentSource
from pipeline.stages.import_docs.tree import Block, Doc, Node

STANDALONE = {"error", "procedure", "config-template"}


@dataclass
class Unit:
    """Part of a piece: a whole section (``node`` and everything under it), or some of its blocks."""

    node: Node
    whole: bool
    blocks: list[Block] = field(default_factory=list)  # when not whole
    part: int | None = None  # chunk number of a long section

    @property
    def words(self) -> int:
        if self.whole:
            return self.node.total_words
        return sum(b.words for b in self.blocks)


@dataclass
class Piece:
    doc: Doc
    units: list[Unit]
    parent: Node | None  # the section whose sub-sections the units are (None: the document)
    type: str = "troubleshooting-tip"
    title: str = ""
    body: str = ""
    sources: list[DocumentSource] = field(default_factory=list)
    summary: str = ""
    needs: list[str] = field(default_factory=list)


@dataclass
class Limits:
    min_words: int = 400
    max_words: int = 800
    hard_cap: int = 1500
