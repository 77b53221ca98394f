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

/// An auction of [`write_auctions`]: id, category, opened, closes.
type Opened = (u64, u64, i64, i64);

/// Writes `n` events of auctions and the bids on them to `path`: auctions open every ~150 ms
/// and run 1–30 s; bids go to an auction opened in the last 40 s (many closed, some not yet
/// open when the bid's time is before theirs), with equal prices; 10% of the events are up to
/// 3 s out of order, so some bids come before their auction. Returns the auctions and bids.
fn write_auctions(path: &Path, n: u64, seed: u64) -> (Vec<Opened>, Vec<Bid>) {
    let mut rng = Rng(seed | 1);
    let (mut text, mut auctions, mut bids) = (String::new(), Vec::<Opened>::new(), Vec::new());
    for i in 0..n {
        let nominal = 1_767_225_600_000 + i as i64 * 7;
        let t = match rng.range(0, 10) {
            0 => nominal - rng.range(0, 3_000) as i64,
            _ => nominal,
        };
        if rng.range(0, 20) == 0 || auctions.is_empty() {
            let (category, expires) = (rng.range(1, 6), t + rng.range(1_000, 30_000) as i64);
            text += &format!("{{\"Auction\":{{\"id\":{i},\"item_name\":\"i{i}\",\"description\":\"d\",\"initial_bid\":{},\"reserve\":{},\"date_time\":{t},\"expires\":{expires},\"seller\":{},\"category\":{category},\"extra\":\"x{i}\"}}}}\n", i % 7, i % 11, i % 13);
            auctions.push((i, category, t, expires));
            continue;
        }
        let recent = auctions
            .iter()
            .rev()
            .take_while(|a| a.2 > nominal - 40_000)
            .count();
        let auction = auctions[auctions.len() - 1 - rng.range(0, recent.max(1) as u64) as usize].0;
        let bid = (
            auction,
            rng.range(0, 50),
            rng.range(1, 40) * 100,
            t,
            format!("e{i}"),
        );
        text += &format!(
            "{{\"Bid\":{{\"auction\":{},\"bidder\":{},\"price\":{},\"channel\":\"c\",\"url\":\"u\",\"date_time\":{},\"extra\":\"{}\"}}}}\n",
            bid.0, bid.1, bid.2, bid.3, bid.4
        );
        bids.push(bid);
    }
    std::fs::write(path, text).unwrap();
    (auctions, bids)
}

/// Each auction's winning bid, computed naively: the highest valid bid, ties to the earliest,
/// then the lowest bidder, then the first in the input.
fn winners(auctions: &[Opened], bids: &[Bid]) -> Vec<(Opened, Bid)> {
    let mut won = Vec::new();
    for &a in auctions {
        let valid = bids
            .iter()
            .filter(|b| b.0 == a.0 && (a.2..=a.3).contains(&b.3));
        let best = valid.fold(None::<&Bid>, |best, b| match best {
            Some(w)
                if (w.2, -w.3, std::cmp::Reverse(w.1)) >= (b.2, -b.3, std::cmp::Reverse(b.1)) =>
            {
                Some(w)
            }
            _ => Some(b),
        });
        if let Some(b) = best {
            won.push((a, b.clone()));
        }
    }
    won
}

#[test]
fn q9_writes_each_auction_with_its_highest_bid_while_open() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("nexmark.jsonl");
    let (auctions, bids) = write_auctions(&input, 40_000, 89);
    let won = winners(&auctions, &bids);
    assert!(
        won.len() > 200 && won.len() < auctions.len(),
        "{}",
        won.len()
    );
    let expected = won.iter().map(|&((id, category, t, expires), ref b)| {
        serde_json::json!({"id": id, "item_name": format!("i{id}"), "description": "d",
            "initial_bid": id % 7, "reserve": id % 11, "date_time": t, "expires": expires,
            "seller": id % 13, "category": category, "extra": format!("x{id}"),
            "auction": b.0, "bidder": b.1, "price": b.2, "bid_date_time": b.3, "bid_extra": b.4})
    });
    assert_eq!(
        sorted(query("q9", &input, &tmp.path().join("q9"))),
        sorted(expected)
    );
}

#[test]
fn q4_averages_each_categorys_final_prices_in_order_of_close() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("nexmark.jsonl");
    let (auctions, bids) = write_auctions(&input, 40_000, 144);
    let mut finals: Vec<(i64, u64, u64, u64)> = winners(&auctions, &bids)
        .into_iter()
        .map(|((id, category, _, expires), b)| (expires, id, category, b.2))
        .collect();
    finals.sort();
    let mut sums: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut expected = Vec::new();
    for (_, _, category, price) in finals {
        let (sum, count) = sums.entry(category).or_default();
        let before = (*count > 0).then(|| *sum as f64 / *count as f64);
        (*sum, *count) = (*sum + price, *count + 1);
        let avg = *sum as f64 / *count as f64;
        if before != Some(avg) {
            expected.push((category, avg));
        }
    }
    assert!(expected.len() > 200, "{}", expected.len());
    // serde_json reads a double to within one unit in the last place: compare as numbers.
    let mut got: Vec<(u64, f64)> = query("q4", &input, &tmp.path().join("q4"))
        .iter()
        .map(|v| {
            (
                v["category"].as_u64().unwrap(),
                v["avg_final"].as_f64().unwrap(),
            )
        })
        .collect();
    let by_value = |a: &(u64, f64), b: &(u64, f64)| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1));
    got.sort_by(by_value);
    expected.sort_by(by_value);
    assert_eq!(got.len(), expected.len());
    for (g, e) in got.iter().zip(&expected) {
        assert!(
            g.0 == e.0 && (g.1 - e.1).abs() <= e.1 * 1e-12,
            "{g:?} != {e:?}"
        );
    }
}
