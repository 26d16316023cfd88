"""Shared by the LLM tests of tests/jobs: a two-interview workspace against the fake OpenAI server."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from tests.fakes.distill_model import excerpt, make_workspace

INTERVIEWS = ("ship-it-59", "ship-it-59-loud")


def shouted(tr):
    """The same interview in capitals: other text, so its windows are not the first one's cache hits."""
    data = tr.model_dump()
    for seg in data["segments"]:
        seg["text"] = seg["text"].upper()
        for word in seg.get("words") or []:
            word["text"] = word["text"].upper()
    return type(tr).model_validate(data)


def llm_workspace(root: Path, base_url: str, **sections: dict) -> Path:
    """``sections``: kb.yaml settings on top of these (``llm={...}``, ``distill={...}``, ``workers={...}``)."""
    tr = excerpt()
    make_workspace(
        root,
        {INTERVIEWS[0]: tr.model_copy(update={"interview": INTERVIEWS[0]}),
         INTERVIEWS[1]: shouted(tr).model_copy(update={"interview": INTERVIEWS[1]})},
    )  # fmt: skip
    cfg = {
        "llm": {"base_url": base_url, "backoff_s": 0.01, "timeout_s": 60},
        "distill": {"backend": "llm", "window_tokens": 500},  # four windows per interview
        "workers": {"visibility_timeout_s": 10, "soft_time_limit_s": 7, "time_limit_s": 8.5},
    }
    for name, values in sections.items():
        cfg[name] = {**cfg.get(name, {}), **values}
    (root / "kb.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return root


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def wait_for(what, timeout: float, why: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(0.1)
    pytest.fail(why)
