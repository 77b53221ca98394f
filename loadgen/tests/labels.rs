//! `spate-loadgen transactions --fraud RATE` and `labels`: every payment gets one outcome, known
//! after it and written in the order outcomes become known; the fraudulent ones are bursts at
//! the fraud-only merchants, and nothing changes without `--fraud`.

mod common;

use common::loadgen;
use std::collections::HashMap;

#[test]
fn labels_give_every_payment_its_outcome_later() {
    let tmp = tempfile::tempdir().unwrap();
    let (tx, labels) = (tmp.path().join("tx.jsonl"), tmp.path().join("labels.jsonl"));
    let common = [
        "--events", "50000", "--users", "200", "--fraud", "0.003", "--seed", "3",
    ];
    for (scenario, path) in [("transactions", &tx), ("labels", &labels)] {
        let to = format!("file:{}", path.display());
        let mut args = vec![scenario];
        args.extend(common);
        args.extend(["--to", &to]);
        let out = loadgen(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let read = |path: &std::path::Path| -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let payments: HashMap<String, serde_json::Value> = read(&tx)
        .into_iter()
        .map(|t| (t["tx_id"].as_str().unwrap().to_string(), t))
        .collect();
    let labels = read(&labels);
    assert_eq!(labels.len(), payments.len(), "one outcome per payment");
    let times: Vec<i64> = labels
        .iter()
        .map(|l| l["event_ms"].as_i64().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "in the order outcomes become known"
    );
    let mut frauds = 0;
    for label in &labels {
        let t = &payments[label["tx_id"].as_str().unwrap()];
        let delay = label["event_ms"].as_i64().unwrap() - t["event_ms"].as_i64().unwrap();
        assert!(
            (5 * 60_000..=6 * 3_600_000).contains(&delay),
            "{label} after {t}"
        );
        let merchant: u64 = t["merchant_id"].as_str().unwrap()[1..].parse().unwrap();
        let at_fraud_merchant = merchant >= 5_000;
        assert_eq!(
            label["fraud"].as_bool().unwrap(),
            at_fraud_merchant,
            "{label}: {t}"
        );
        if at_fraud_merchant {
            frauds += 1;
            assert!(t["amount"].as_f64().unwrap() >= 800.0, "{t}");
        }
    }
    assert!(
        (200..=1_000).contains(&frauds),
        "0.3% of payments start a burst of 2-5: {frauds}"
    );

    let out = loadgen(&[
        "sensors", "--events", "10", "--fraud", "0.1", "--to", "null",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--fraud is for transactions"));
}
