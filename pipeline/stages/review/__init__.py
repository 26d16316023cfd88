"""``kb review``: the reviewer's queue and the actions on it (git is the audit log).

``queue`` lists what needs a reviewer, in the order they should act: atoms with errors, then
with warnings, then proposals waiting (``<id>.proposed.md``), then drafts and in-review atoms
by source and age, each with why it is there. ``accept`` merges a proposal (keeping the
reviewer's own fields), ``reject`` removes it and remembers it (the same proposal is not
written again), ``promote`` moves an atom's status with the reviewer's name; ``--commit`` makes
each a git commit.
"""

from __future__ import annotations

from pipeline.stages.review.actions import accept, promote, reject, show
from pipeline.stages.review.queue import QueueItem, queue

run = queue

__all__ = ["QueueItem", "accept", "promote", "queue", "reject", "run", "show"]
