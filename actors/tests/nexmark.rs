//! The Nexmark queries through the `spate` binary against naive computations over the same
//! events, generated here (persons, auctions and bids, hot auctions and equal prices, 10% of the
//! events up to 3 s out of order: within the 4 s watermark delay).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::path::Path;

/// One bid: auction, bidder, price, time, extra.
type Bid = (u64, u64, u64, i64, String);

/// The events written, by kind, in input order.
#[derive(Default)]
struct Events {
    bids: Vec<Bid>,
    /// id, name, city, state, time.
    persons: Vec<(u64, String, String, String, i64)>,
    /// id, seller, category, time.
    auctions: Vec<(u64, u64, u64, i64)>,
}

/// Writes `n` events to `path` and returns the bids among them, in input order.
fn write_events(path: &Path, n: u64, seed: u64) -> Vec<Bid> {
    write_all_events(path, n, seed).bids
}

/// Writes `n` events to `path` and returns them.
fn write_all_events(path: &Path, n: u64, seed: u64) -> Events {
    let mut rng = Rng(seed | 1);
    let (mut text, mut events) = (String::new(), Events::default());
    for i in 0..n {
        let mut t = 1_767_225_600_000 + i as i64 * 7;
        if rng.range(0, 10) == 0 {
            t -= rng.range(0, 3_000) as i64;
        }
        match rng.range(0, 50) {
            0 => {
                let state = ["or", "id", "ca", "ny", "wa"][rng.range(0, 5) as usize];
                let city = format!("c{}", rng.range(0, 9));
                text += &format!("{{\"Person\":{{\"id\":{i},\"name\":\"p{i}\",\"email_address\":\"x@y\",\"credit_card\":\"1\",\"city\":\"{city}\",\"state\":\"{state}\",\"date_time\":{t},\"extra\":\"\"}}}}\n");
                events
                    .persons
                    .push((i, format!("p{i}"), city, state.to_string(), t));
            }
            1..=3 => {
                // Mostly a recent person's auction, sometimes one of a person yet to come.
                let seller = match (events.persons.len(), rng.range(0, 10)) {
                    (0, _) | (_, 0) => i + rng.range(1, 3_000),
                    (n, _) => events.persons[n - 1 - rng.range(0, n.min(20) as u64) as usize].0,
                };
                let category = rng.range(10, 13);
                text += &format!("{{\"Auction\":{{\"id\":{i},\"item_name\":\"i\",\"description\":\"d\",\"initial_bid\":10,\"reserve\":20,\"date_time\":{t},\"expires\":{},\"seller\":{seller},\"category\":{category},\"extra\":\"\"}}}}\n", t + 20_000);
                events.auctions.push((i, seller, category, t));
            }
            _ => {
                let auction = match rng.range(0, 2) {
                    0 => 1_230 + rng.range(0, 3) * 123,
                    _ => rng.range(1_000, 3_000),
                };
                let bid = (
                    auction,
                    rng.range(0, 500),
                    rng.range(1, 300) * 1_000 + rng.range(0, 3) * 7,
                    t,
                    format!("e{}", rng.range(0, 1_000_000)),
                );
                text += &format!(
                    "{{\"Bid\":{{\"auction\":{},\"bidder\":{},\"price\":{},\"channel\":\"c\",\"url\":\"u\",\"date_time\":{},\"extra\":\"{}\"}}}}\n",
                    bid.0, bid.1, bid.2, bid.3, bid.4
                );
                events.bids.push(bid);
            }
        }
    }
    std::fs::write(path, text).unwrap();
    events
}

fn query(q: &str, input: &Path, out: &Path) -> Vec<serde_json::Value> {
    let (results, dead) = run_on_time(&format!("nexmark-{q}"), input, out);
    assert!(dead.is_empty(), "{dead:?}");
    results
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `rows` as sorted JSON texts.
fn sorted(rows: impl IntoIterator<Item = serde_json::Value>) -> Vec<String> {
    let mut rows: Vec<String> = rows.into_iter().map(|v| v.to_string()).collect();
    rows.sort();
    rows
}

#[test]
fn the_stateless_queries_pass_convert_and_select_every_bid() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("nexmark.jsonl");
    let bids = write_events(&input, 60_000, 5);
    let q0 = bids.iter().map(|(a, b, p, t, e)| {
        serde_json::json!({"auction": a, "bidder": b, "price": p, "date_time": t, "extra": e})
    });
    assert_eq!(
        sorted(query("q0", &input, &tmp.path().join("q0"))),
        sorted(q0)
    );
    let q1 = bids.iter().map(|(a, b, p, t, e)| {
        let euros: f64 = format!("{}.{:03}", p * 908 / 1000, p * 908 % 1000)
            .parse()
            .unwrap();
        serde_json::json!({"auction": a, "bidder": b, "price": euros, "date_time": t, "extra": e})
    });
    assert_eq!(
        sorted(query("q1", &input, &tmp.path().join("q1"))),
        sorted(q1)
    );
    let q2: Vec<_> = (bids.iter())
        .filter(|b| b.0.is_multiple_of(123))
        .map(|(a, _, p, _, _)| serde_json::json!({"auction": a, "price": p}))
        .collect();
    assert!(q2.len() > 1_000, "{}", q2.len());
    assert_eq!(
        sorted(query("q2", &input, &tmp.path().join("q2"))),
        sorted(q2)
    );
}

#[test]
fn q7_writes_every_bid_at_its_windows_highest_price() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("nexmark.jsonl");
    let bids = write_events(&input, 60_000, 8);
    let mut highest: BTreeMap<i64, u64> = BTreeMap::new();
    for b in &bids {
        let w = highest.entry(b.3.div_euclid(10_000) * 10_000).or_default();
        *w = (*w).max(b.2);
    }
    let expected = bids.iter().filter_map(|(a, bidder, p, t, _)| {
        let start = t.div_euclid(10_000) * 10_000;
        (highest[&start] == *p).then(|| {
            serde_json::json!({"auction": a, "price": p, "bidder": bidder, "date_time": t,
                "window_start": start, "window_end": start + 10_000})
        })
    });
    let expected = sorted(expected);
    assert!(expected.len() > highest.len(), "some window has a tie");
    assert_eq!(
        sorted(query("q7", &input, &tmp.path().join("q7"))),
        expected
    );
}

#[test]
fn the_queries_also_read_the_nexmark_generator_in_process() {
    let tmp = tempfile::tempdir().unwrap();
    let sink = file_arg(&tmp.path().join("q0"));
    let args = ["run", "nexmark-q0", "--source", "gen", "--events", "5000"];
    run_ok(&[&args[..], &["--sink", &sink]].concat());
    let bids = all_outputs(&tmp.path().join("q0"))[0].clone();
    // The generator makes 46 bids in every 50 events.
    assert_eq!(bids.len(), 4_600);
    for bid in &bids {
        object_with(bid, &["auction", "bidder", "date_time", "extra", "price"]);
    }
}

#[test]
fn q11_counts_each_bidders_sessions_with_bids_10_s_apart_kept_together() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("nexmark.jsonl");
    let mut bids = write_events(&input, 30_000, 13);
    // Bidder 9999 bids exactly 10 s apart (one session), then 10.001 s later (a new one).
    let mut text = std::fs::read_to_string(&input).unwrap();
    // After the other events (30,000 events, 7 ms apart), so none is late.
    for t in [1_767_225_811_000, 1_767_225_821_000, 1_767_225_831_001] {
        text += &format!("{{\"Bid\":{{\"auction\":1,\"bidder\":9999,\"price\":1,\"channel\":\"c\",\"url\":\"u\",\"date_time\":{t},\"extra\":\"\"}}}}\n");
        bids.push((1, 9_999, 1, t, String::new()));
    }
    std::fs::write(&input, text).unwrap();
    let mut by_bidder: BTreeMap<u64, Vec<i64>> = BTreeMap::new();
    for b in &bids {
        by_bidder.entry(b.1).or_default().push(b.3);
    }
    let mut expected = Vec::new();
    for (bidder, mut times) in by_bidder {
        times.sort();
        let (mut first, mut last, mut count) = (times[0], times[0], 0);
        for t in times {
            if t - last > 10_000 {
                expected.push(serde_json::json!({"bidder": bidder, "bid_count": count,
                    "window_start": first, "window_end": last + 10_000}));
                (first, count) = (t, 0);
            }
            (last, count) = (t, count + 1);
        }
        expected.push(serde_json::json!({"bidder": bidder, "bid_count": count,
            "window_start": first, "window_end": last + 10_000}));
    }
    let got = sorted(query("q11", &input, &tmp.path().join("q11")));
    assert!(
        got.iter()
            .any(|r| r.contains("\"bid_count\":2,\"bidder\":9999")),
        "{got:?}"
    );
    assert_eq!(got, sorted(expected));
}

#[test]
fn q3_joins_auctions_of_category_10_with_their_sellers_in_or_id_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("nexmark.jsonl");
    let events = write_all_events(&input, 60_000, 21);
    let persons: BTreeMap<u64, _> = events.persons.iter().map(|p| (p.0, p)).collect();
    let expected = events
        .auctions
        .iter()
        .filter_map(|&(id, seller, category, _)| {
            let p = persons.get(&seller)?;
            (category == 10 && ["or", "id", "ca"].contains(&p.3.as_str()))
                .then(|| serde_json::json!({"name": p.1, "city": p.2, "state": p.3, "id": id}))
        });
    let expected = sorted(expected);
    assert!(expected.len() > 50, "{}", expected.len());
    assert_eq!(
        sorted(query("q3", &input, &tmp.path().join("q3"))),
        expected
    );
}

#[test]
fn q8_finds_persons_who_sold_in_the_window_they_registered_in() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("nexmark.jsonl");
    let events = write_all_events(&input, 60_000, 34);
    let window = |t: i64| t.div_euclid(10_000) * 10_000;
    let expected = events.persons.iter().filter_map(|(id, name, _, _, t)| {
        let sold = (events.auctions.iter()).any(|a| a.1 == *id && window(a.3) == window(*t));
        sold.then(|| serde_json::json!({"id": id, "name": name, "window_start": window(*t)}))
    });
    let expected = sorted(expected);
    assert!(expected.len() > 50, "{}", expected.len());
    assert_eq!(
        sorted(query("q8", &input, &tmp.path().join("q8"))),
        expected
    );
}

#[test]
fn q5_writes_each_windows_auctions_with_the_most_bids() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("nexmark.jsonl");
    let bids = write_events(&input, 40_000, 55);
    let mut counts: BTreeMap<(i64, u64), u64> = BTreeMap::new();
    for b in &bids {
        let last = b.3.div_euclid(2_000) * 2_000;
        for start in (0..5).map(|k| last - k * 2_000) {
            *counts.entry((start, b.0)).or_default() += 1;
        }
    }
    let mut most: BTreeMap<i64, u64> = BTreeMap::new();
    for (&(start, _), &n) in &counts {
        let m = most.entry(start).or_default();
        *m = (*m).max(n);
    }
    let expected = counts
        .iter()
        .filter(|((start, _), n)| most[start] == **n)
        .map(|(&(start, auction), n)| {
            serde_json::json!({"auction": auction, "num": n, "window_start": start,
                "window_end": start + 10_000})
        });
    let expected = sorted(expected);
    assert!(expected.len() > most.len(), "some window has a tie");
    assert_eq!(
        sorted(query("q5", &input, &tmp.path().join("q5"))),
        expected
    );
}
