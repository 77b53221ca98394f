"""iot-anomaly's model in River, for bench/models.sh: per device, a rolling mean of each field,
River's StandardScaler over the deviations from it and River's online KMeans (2 clusters) over
the scaled deviations; a reading's score is the distance to the nearest centre, above the
threshold it is an anomaly and is not learned. The same features and the same decision as
spate's pipeline (actors/src/pipelines/iot_anomaly.rs), with River learning one reading at a
time. Usage: river_iot.py READINGS.jsonl OUT.jsonl [THRESHOLD]. Prints events/s."""

import json
import math
import sys
import time

from river import cluster, preprocessing

FIELDS = ("temperature", "vibration", "pressure")
SMOOTHING = 0.1
WARM_UP = 16


class Device:
    def __init__(self):
        self.mean = None
        self.scaler = preprocessing.StandardScaler()
        self.kmeans = cluster.KMeans(n_clusters=2, halflife=0.5, seed=7)
        self.learned = 0

    def observe(self, reading, threshold):
        x = [reading[f] for f in FIELDS]
        if self.mean is None:
            self.mean = x
            return None
        deviation = {f: v - m for f, v, m in zip(FIELDS, x, self.mean)}
        score = None
        if self.learned >= WARM_UP:
            z = self.scaler.transform_one(deviation)
            score = min(
                math.sqrt(sum((z[f] - c.get(f, 0.0)) ** 2 for f in FIELDS))
                for c in self.kmeans.centers.values()
            )
            if score > threshold:
                return score
        self.mean = [m + SMOOTHING * (v - m) for v, m in zip(x, self.mean)]
        self.scaler.learn_one(deviation)
        self.kmeans.learn_one(self.scaler.transform_one(deviation))
        self.learned += 1
        return score


def main():
    source, target = sys.argv[1], sys.argv[2]
    threshold = float(sys.argv[3]) if len(sys.argv) > 3 else 6.0
    devices = {}
    n = 0
    started = time.perf_counter()
    with open(source) as lines, open(target, "w") as out:
        for line in lines:
            r = json.loads(line)
            n += 1
            device = devices.setdefault(r["device_id"], Device())
            score = device.observe(r, threshold)
            if score is not None and score > threshold:
                out.write(json.dumps({"device_id": r["device_id"], "event_ms": r["event_ms"],
                                      "score": round(score, 3)}) + "\n")
    elapsed = time.perf_counter() - started
    print(f"{n / elapsed:.0f}")


if __name__ == "__main__":
    main()
