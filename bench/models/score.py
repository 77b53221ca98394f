"""Scores an anomaly detector's output against spate-loadgen's --truth file: of the planted
anomalies after each device's first WARM_UP readings (what a model can see), the share found
(recall), and the share of alerts that are planted (precision). Usage: score.py READINGS TRUTH
ALERTS... (alert files or directories of *.jsonl). Prints `recall precision alerts`."""

import glob
import json
import os
import sys

WARM_UP = 50


def alerts(paths):
    found = set()
    for path in paths:
        files = glob.glob(os.path.join(path, "*.jsonl")) if os.path.isdir(path) else [path]
        for f in files:
            for line in open(f):
                a = json.loads(line)
                found.add((a["device_id"], a["event_ms"]))
    return found


def main():
    readings, truth, *outputs = sys.argv[1:]
    planted = {(t["device_id"], t["event_ms"]) for t in map(json.loads, open(truth))}
    seen, visible = {}, set()
    for line in open(readings):
        r = json.loads(line)
        key = (r["device_id"], r["event_ms"])
        seen[r["device_id"]] = seen.get(r["device_id"], 0) + 1
        if seen[r["device_id"]] > WARM_UP and key in planted:
            visible.add(key)
    found = alerts(outputs)
    recall = len(found & visible) / max(1, len(visible))
    precision = len(found & planted) / max(1, len(found))
    print(f"{recall:.3f} {precision:.3f} {len(found)}")


if __name__ == "__main__":
    main()
