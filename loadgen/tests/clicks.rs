//! `spate-loadgen clicks`: most purchases follow a view of the same product page by the same
//! visitor in the 10 minutes before (what `funnel` attributes), and every click is a view or a
//! purchase.

mod common;

use common::loadgen;
use std::collections::HashMap;

#[test]
fn most_purchases_follow_a_view_of_their_page_minutes_before() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("clicks.jsonl");
    let to = format!("file:{}", path.display());
    let out = loadgen(&[
        "clicks", "--events", "100000", "--keys", "1000", "--seed", "5", "--to", &to,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut views: HashMap<(String, String), Vec<i64>> = HashMap::new();
    let mut purchases = Vec::new();
    for line in std::fs::read_to_string(&path).unwrap().lines() {
        let c: serde_json::Value = serde_json::from_str(line).unwrap();
        let key = (c["user_id"].to_string(), c["page"].to_string());
        let t = c["event_ms"].as_i64().unwrap();
        match c["action"].as_str().unwrap() {
            "view" => views.entry(key).or_default().push(t),
            "purchase" => purchases.push((key, t)),
            other => panic!("action {other}"),
        }
    }
    let attributed = purchases
        .iter()
        .filter(|(key, t)| {
            (views.get(key)).is_some_and(|v| v.iter().any(|at| (t - 600_000..=*t).contains(at)))
        })
        .count();
    let share = attributed as f64 / purchases.len() as f64;
    assert!(purchases.len() > 2_000, "{}", purchases.len());
    assert!(
        share > 0.7,
        "{attributed} of {} purchases follow a view",
        purchases.len()
    );
}
