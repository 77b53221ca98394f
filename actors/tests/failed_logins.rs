//! `failed-logins` through the `spate` binary against a naive computation over the same
//! attempts, generated here with disorder (within the watermark delay) and planted bursts.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};

/// One attempt: account, ip, success, time.
type Attempt = (String, String, bool, i64);

fn attempts(n: u64, seed: u64) -> Vec<Attempt> {
    let mut rng = Rng(seed | 1);
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < n as usize {
        i += 1;
        let base = 1_767_225_600_000 + i * 50;
        let jitter = |rng: &mut Rng| match rng.range(0, 10) {
            0 => rng.range(0, 5_000) as i64,
            _ => 0,
        };
        if rng.range(0, 40) == 0 {
            // A burst: 2–6 failures of one account within 4 s, from 1–3 ips.
            let account = format!("a{}", rng.range(0, 150));
            let ips = rng.range(1, 4);
            for _ in 0..rng.range(2, 7) {
                let ip = format!("10.0.0.{}", rng.range(0, ips));
                let t = base + rng.range(0, 4_000) as i64 - jitter(&mut rng);
                out.push((account.clone(), ip, false, t));
            }
            continue;
        }
        let account = format!("a{}", rng.range(0, 150));
        let ip = format!("192.0.2.{}", rng.range(0, 50));
        let t = base - jitter(&mut rng);
        out.push((account, ip, rng.range(0, 10) != 0, t));
    }
    out
}

/// The alerts, computed naively: each account's attempts sorted by time (ties in input order),
/// the rule applied to each failure in turn.
fn naive_alerts(attempts: &[Attempt]) -> BTreeSet<(String, i64, u64, u64)> {
    let mut by_account: BTreeMap<&str, Vec<(i64, usize)>> = BTreeMap::new();
    for (i, a) in attempts.iter().enumerate() {
        by_account.entry(&a.0).or_default().push((a.3, i));
    }
    let mut alerts = BTreeSet::new();
    for (account, mut times) in by_account {
        times.sort();
        let mut last_alert: Option<i64> = None;
        let mut failures: Vec<(i64, &str)> = Vec::new();
        for (t, i) in times {
            if attempts[i].2 {
                continue;
            }
            failures.push((t, &attempts[i].1));
            let within: Vec<_> = failures.iter().filter(|f| f.0 >= t - 300_000).collect();
            let quiet = last_alert.is_none_or(|a| a < t - 300_000 || a >= t);
            if within.len() >= 3 && quiet {
                last_alert = Some(t);
                let ips: BTreeSet<&str> = within.iter().map(|f| f.1).collect();
                alerts.insert((
                    account.to_string(),
                    t,
                    within.len() as u64,
                    ips.len() as u64,
                ));
            }
        }
    }
    alerts
}

#[test]
fn failed_logins_alerts_as_a_naive_pass_over_each_accounts_attempts_in_time_order() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("logins.jsonl");
    let attempts = attempts(40_000, 17);
    let text: String = attempts
        .iter()
        .map(|(account, ip, success, t)| {
            format!("{{\"account_id\":\"{account}\",\"ip\":\"{ip}\",\"success\":{success},\"event_ms\":{t}}}\n")
        })
        .collect();
    std::fs::write(&input, text).unwrap();
    let expected = naive_alerts(&attempts);
    assert!(
        expected.len() > 50,
        "too few alerts to compare: {}",
        expected.len()
    );
    let (results, _) = run_on_time("failed-logins", &input, &tmp.path().join("out"));
    let got: BTreeSet<(String, i64, u64, u64)> = results
        .iter()
        .map(|l| {
            let v = object_with(l, &["account_id", "alert_ms", "failures", "ips"]);
            (
                v["account_id"].as_str().unwrap().to_string(),
                v["alert_ms"].as_i64().unwrap(),
                v["failures"].as_u64().unwrap(),
                v["ips"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(got.len(), expected.len(), "alerts");
    assert_eq!(got, expected);
}
