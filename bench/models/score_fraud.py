"""Scores a fraud model's output against the payments' outcomes: the AUC and mean log-loss of
the probabilities of the payments made after the first WARM_UP of event time (the model has
learned from outcomes by then). Usage: score_fraud.py LABELS OUTPUT... (files, or directories
of *.jsonl). Prints `auc log_loss scored`."""

import bisect
import glob
import json
import math
import os
import sys

WARM_UP = 2 * 3600 * 1000


def scores(paths):
    for path in paths:
        files = glob.glob(os.path.join(path, "*.jsonl")) if os.path.isdir(path) else [path]
        for f in files:
            for line in open(f):
                yield json.loads(line)


def main():
    labels, *outputs = sys.argv[1:]
    fraud = {r["tx_id"]: r["fraud"] for r in map(json.loads, open(labels))}
    rows = list(scores(outputs))
    start = min(r["event_ms"] for r in rows)
    pairs = [(r["probability"], fraud[r["tx_id"]]) for r in rows if r["event_ms"] >= start + WARM_UP]
    negatives = sorted(p for p, f in pairs if not f)
    positives = [p for p, f in pairs if f]
    wins = sum(bisect.bisect_left(negatives, p) + bisect.bisect_right(negatives, p) for p in positives) / 2
    auc = wins / (len(positives) * len(negatives))
    loss = sum(-math.log(min(max(p if f else 1 - p, 1e-15), 1.0)) for p, f in pairs) / len(pairs)
    print(f"{auc:.4f} {loss:.4f} {len(pairs)}")


if __name__ == "__main__":
    main()
