"""fraud-score's model in River, for bench/models.sh: per user, the same seven features as
spate's pipeline (actors/src/pipelines/fraud_score.rs: amount; count and sum of the user's
payments in the 5 minutes and the hour before; time since the previous payment; whether the
merchant is new among the user's last 32), River's StandardScaler and a LogisticRegression
trained by River's FTRL-Proximal optimizer with spate's settings (alpha 2, beta 1, L1 0.5,
L2 0.5). Prequential, like spate: a payment is scored before its outcome is learned; River
learns each outcome, one at a time, before the first payment later than it.
Usage: river_fraud.py PAYMENTS.jsonl LABELS.jsonl OUT.jsonl. Prints events/s (payments and
outcomes)."""

import json
import math
import sys
import time
from collections import deque

from river import linear_model, optim, preprocessing

MINUTE = 60_000
HOUR = 60 * MINUTE
MERCHANTS_KEPT = 32
NAMES = ("amount", "count_5m", "sum_5m", "count_1h", "sum_1h", "since", "new_merchant")


class Activity:
    def __init__(self):
        self.recent = deque()
        self.last = None
        self.merchants = deque()

    def features(self, t, cents, merchant):
        def window(span):
            n, total = 0, 0.0
            for at, c in self.recent:
                if t - span <= at <= t:
                    n += 1
                    total += c
            return n, total

        c5, s5 = window(5 * MINUTE)
        c1, s1 = window(HOUR)
        since = 86_400.0 if self.last is None else max(t - self.last, 0) / 1e3
        dollars = lambda c: math.log(1.0 + c / 100.0)
        x = (dollars(cents), c5, dollars(s5), c1, dollars(s1), math.log(1.0 + since),
             0.0 if merchant in self.merchants else 1.0)
        return dict(zip(NAMES, x))

    def record(self, t, cents, merchant):
        self.recent.append((t, cents))
        newest = max(at for at, _ in self.recent)
        self.recent = deque((at, c) for at, c in self.recent if at > newest - HOUR)
        self.last = t if self.last is None else max(self.last, t)
        if merchant in self.merchants:
            self.merchants.remove(merchant)
        self.merchants.append(merchant)
        if len(self.merchants) > MERCHANTS_KEPT:
            self.merchants.popleft()


def main():
    payments, labels, target = sys.argv[1:4]
    model = preprocessing.StandardScaler() | linear_model.LogisticRegression(
        optimizer=optim.FTRLProximal(alpha=2.0, beta=1.0, l1=0.5, l2=0.5))
    users, waiting = {}, {}
    events = 0
    started = time.perf_counter()
    with open(payments) as tx, open(labels) as outcomes, open(target, "w") as out:
        outcome = json.loads(next(outcomes, "null"))

        def learn_until(t):
            nonlocal outcome, events
            while outcome is not None and outcome["event_ms"] < t:
                x = waiting.pop(outcome["tx_id"], None)
                if x is not None:
                    model.learn_one(x, outcome["fraud"])
                events += 1
                outcome = json.loads(next(outcomes, "null"))

        for line in tx:
            p = json.loads(line)
            t, cents = p["event_ms"], round(p["amount"] * 100)
            learn_until(t)
            activity = users.setdefault(p["user_id"], Activity())
            x = activity.features(t, cents, p["merchant_id"])
            activity.record(t, cents, p["merchant_id"])
            probability = model.predict_proba_one(x).get(True, 0.5)
            waiting[p["tx_id"]] = x
            out.write(json.dumps({"tx_id": p["tx_id"], "user_id": p["user_id"], "event_ms": t,
                                  "probability": probability}) + "\n")
            events += 1
        learn_until(math.inf)
    elapsed = time.perf_counter() - started
    print(f"{events / elapsed:.0f}")


if __name__ == "__main__":
    main()
