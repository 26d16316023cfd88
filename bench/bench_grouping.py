"""Grouping accuracy on loghub-2k: kb's miner vs Drain3 (default settings + number masking), same run.

Usage: python bench/bench_grouping.py /path/to/loghub   (a folder with <System>/<System>_2k.log_structured.csv)
Skips (exit 0, says so) without the folder. loghub is for research use: never commit it.
Grouping accuracy (Zhu et al., ICSE-SEIP 2019): a line counts as correct when the set of lines in
its parsed group equals the set of lines of its ground-truth template.
"""

from __future__ import annotations

import csv
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TUNE = ["HDFS", "Hadoop", "Spark", "Zookeeper", "BGL", "HPC", "Thunderbird", "Windows"]
HELD_OUT = ["Linux", "Android", "HealthApp", "Apache", "Proxifier", "OpenSSH", "OpenStack", "Mac"]


def load(root: Path, system: str) -> tuple[list[str], list[str]]:
    path = root / system / f"{system}_2k.log_structured.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [r["Content"] for r in rows], [r["EventId"] for r in rows]


def grouping_accuracy(pred: list, truth: list[str]) -> float:
    by_pred: dict = defaultdict(set)
    by_truth: dict = defaultdict(set)
    for i, (p, t) in enumerate(zip(pred, truth, strict=True)):
        by_pred[p].add(i)
        by_truth[t].add(i)
    correct = 0
    for members in by_pred.values():
        t = truth[next(iter(members))]
        if by_truth[t] == members:
            correct += len(members)
    return correct / len(truth)


def kb_groups(lines: list[str]) -> list:
    from pipeline.ops.miner import Miner

    miner = Miner()
    forms = [miner.add(line) for line in lines]
    tmpl = miner.templates()
    return [tmpl[f] for f in forms]


def drain3_groups(lines: list[str]) -> list:
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    config = TemplateMinerConfig()
    config.profiling_enabled = False
    config.masking_instructions = [MaskingInstruction(r"((?<=[^A-Za-z0-9])|^)([\-\+]?\d+)((?=[^A-Za-z0-9])|$)", "NUM")]
    miner = TemplateMiner(config=config)
    ids = [miner.add_log_message(line)["cluster_id"] for line in lines]
    return ids


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else None
    if root is None or not (root / "HDFS").is_dir():
        print("skipped: pass the loghub folder (github logpai/loghub, research-use licence, not committed)")
        return 0
    import logging

    logging.disable(logging.INFO)
    results = {}
    for system in TUNE + HELD_OUT:
        lines, truth = load(root, system)
        row = {}
        for name, fn in (("kb", kb_groups), ("drain3", drain3_groups)):
            t0 = time.perf_counter()
            pred = fn(lines)
            dt = time.perf_counter() - t0
            row[name] = (grouping_accuracy(pred, truth), len(lines) / dt)
        results[system] = row
    print(f"{'system':12} {'kb GA':>7} {'drain3 GA':>9} {'kb lines/s':>11} {'drain3 lines/s':>14}")
    for label, systems in (("tuned on", TUNE), ("held out", HELD_OUT), ("all 16", TUNE + HELD_OUT)):
        if label != "all 16":
            for s in systems:
                r = results[s]
                print(f"{s:12} {r['kb'][0]:7.3f} {r['drain3'][0]:9.3f} {r['kb'][1]:11.0f} {r['drain3'][1]:14.0f}")
        kb = sum(results[s]["kb"][0] for s in systems) / len(systems)
        d3 = sum(results[s]["drain3"][0] for s in systems) / len(systems)
        kb_rate = sum(len(systems) * 2000 / sum(2000 / results[s]["kb"][1] for s in systems) for _ in [0])
        d3_rate = len(systems) * 2000 / sum(2000 / results[s]["drain3"][1] for s in systems)
        print(f"mean {label}: kb {kb:.3f}  drain3 {d3:.3f}  rate kb/drain3 {kb_rate / d3_rate:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
