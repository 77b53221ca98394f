//! `funnel` through the `spate` binary against a naive computation over the same clicks,
//! generated here with disorder (within the watermark delay), purchases that follow views of
//! the same page minutes before, and views exactly at the edges of the 10-minute attribution
//! interval.

mod common;

use common::*;
use std::collections::BTreeMap;

/// One click: user, page, purchase price (`None` for a view), time.
type Click = (u64, u64, Option<i64>, i64);

fn clicks(n: u64, seed: u64) -> Vec<Click> {
    let mut rng = Rng(seed | 1);
    let mut out: Vec<Click> = Vec::new();
    let mut viewed: BTreeMap<u64, u64> = BTreeMap::new();
    for i in 0..n {
        let t = 1_767_225_600_000 + i as i64 * 100;
        let user = rng.range(0, 300);
        if rng.range(0, 25) != 0 {
            let page = rng.range(0, 40);
            viewed.insert(user, page);
            out.push((user, page, None, t));
            continue;
        }
        let page = match viewed.get(&user) {
            Some(&page) if rng.range(0, 10) < 7 => page,
            _ => rng.range(0, 40),
        };
        out.push((user, page, Some(rng.range(100, 50_000) as i64), t));
        // Views at the edges: exactly 10 minutes before (attributes), 1 ms more (does not),
        // at the purchase's own time (attributes).
        let other = 1_000 + i; // a page no other click uses
        let edge = match rng.range(0, 12) {
            0 => Some((page, t - 600_000)),
            1 => Some((other, t - 600_001)),
            2 => Some((page, t)),
            _ => None,
        };
        if let Some((p, at)) = edge {
            out.push((user, p, None, at));
            if p == other {
                out.push((user, p, Some(999), t));
            }
        }
    }
    out.sort_by_key(|c| c.3);
    // Disorder: one click in ten swaps with one up to 30 places and 3 s later.
    for i in 0..out.len() {
        if rng.range(0, 10) == 0 {
            let j = (i + rng.range(1, 31) as usize).min(out.len() - 1);
            if out[j].3 - out[i].3 <= 3_000 {
                out.swap(i, j);
            }
        }
    }
    out
}

/// Per (page, window start): purchases, attributed, revenue.
fn naive_funnel(clicks: &[Click]) -> BTreeMap<(String, i64), (u64, u64, i64)> {
    let mut rows: BTreeMap<(String, i64), (u64, u64, i64)> = BTreeMap::new();
    for &(user, page, price, t) in clicks {
        let Some(price) = price else { continue };
        let attributed = clicks.iter().any(|&(u, p, view, at)| {
            u == user && p == page && view.is_none() && (t - 600_000..=t).contains(&at)
        });
        let row = rows
            .entry((format!("/product/{page}"), t.div_euclid(300_000) * 300_000))
            .or_default();
        row.0 += 1;
        row.1 += attributed as u64;
        row.2 += price;
    }
    rows
}

#[test]
fn funnel_counts_purchases_and_attributed_ones_per_page_and_5_minutes() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("clicks.jsonl");
    let clicks = clicks(20_000, 29);
    let mut text = String::new();
    for &(user, page, price, t) in &clicks {
        let (action, cents) = match price {
            Some(p) => ("purchase", p),
            None => ("view", 0),
        };
        text += &format!(
            "{{\"user_id\":\"u{user}\",\"page\":\"/product/{page}\",\"action\":\"{action}\",\"price_cents\":{cents},\"event_ms\":{t}}}\n"
        );
    }
    text += "{\"user_id\":\"u1\",\"page\":\"/\",\"action\":\"refund\",\"price_cents\":0,\"event_ms\":1767225600000}\n";
    std::fs::write(&input, text).unwrap();
    let expected = naive_funnel(&clicks);
    let attributed: u64 = expected.values().map(|r| r.1).sum();
    let purchases: u64 = expected.values().map(|r| r.0).sum();
    assert!(
        attributed > purchases / 2 && attributed < purchases,
        "{attributed} of {purchases}"
    );

    let (results, dead) = run_on_time("funnel", &input, &tmp.path().join("out"));
    assert_eq!(dead.len(), 1, "the refund is a dead letter: {dead:?}");
    let got: BTreeMap<(String, i64), (u64, u64, i64)> = results
        .iter()
        .map(|l| {
            let v = object_with(
                l,
                &[
                    "attributed",
                    "page",
                    "purchases",
                    "revenue_cents",
                    "window_end",
                    "window_start",
                ],
            );
            let start = v["window_start"].as_i64().unwrap();
            assert_eq!(v["window_end"].as_i64().unwrap(), start + 300_000, "{l}");
            let key = (v["page"].as_str().unwrap().to_string(), start);
            let row = (
                v["purchases"].as_u64().unwrap(),
                v["attributed"].as_u64().unwrap(),
                v["revenue_cents"].as_i64().unwrap(),
            );
            (key, row)
        })
        .collect();
    assert_eq!(got.len(), expected.len(), "rows");
    for (key, row) in &expected {
        assert_eq!(got.get(key), Some(row), "{key:?}");
    }
}
