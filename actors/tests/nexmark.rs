//! The Nexmark queries through the `spate` binary against naive computations over the same
//! events, generated here (persons, auctions and bids, hot auctions and equal prices, 10% of the
//! events up to 3 s out of order: within the 4 s watermark delay).

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
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

/// A bid with every field: auction, bidder, price, channel, url, time, extra.
#[derive(Clone, Debug)]
struct FullBid {
    auction: u64,
    bidder: u64,
    price: u64,
    channel: String,
    url: String,
    time: i64,
    extra: String,
}

impl FullBid {
    /// `{"auction","bidder","price","channel","url","date_time","extra"}`.
    fn json(&self) -> serde_json::Value {
        serde_json::json!({"auction": self.auction, "bidder": self.bidder, "price": self.price,
            "channel": self.channel, "url": self.url, "date_time": self.time, "extra": self.extra})
    }
}

/// Writes `n` events 3 s apart over most of a day and across midnight (UTC), 10% of them up to
/// 3 s out of order: auctions (ids 0–39; category 10 or 11) and bids on them with prices of
/// every rank, repeated bidders and prices, and channels and urls of every shape the queries
/// tell apart. Returns the bids and the auctions' categories, by id.
fn write_detailed(path: &Path, n: u64, seed: u64) -> (Vec<FullBid>, BTreeMap<u64, u64>) {
    const CHANNELS: [&str; 7] = [
        "Google",
        "Facebook",
        "Baidu",
        "Apple",
        "apple",
        "channel-17",
        "channel-42",
    ];
    let mut rng = Rng(seed | 1);
    let (mut text, mut bids, mut categories) = (String::new(), Vec::new(), BTreeMap::new());
    for i in 0..n {
        // From 20:00 UTC on 2026-01-01.
        let mut time = 1_767_297_600_000 + i as i64 * 3_000;
        if rng.range(0, 10) == 0 {
            time -= rng.range(0, 3_000) as i64;
        }
        let auction = rng.range(0, 40);
        if rng.range(0, 20) == 0 && !categories.contains_key(&auction) {
            let category = rng.range(10, 12);
            categories.insert(auction, category);
            text += &format!("{{\"Auction\":{{\"id\":{auction},\"item_name\":\"i{auction}\",\"description\":\"d\",\"initial_bid\":5,\"reserve\":9,\"date_time\":{time},\"expires\":{},\"seller\":7,\"category\":{category},\"extra\":\"x\"}}}}\n", time + 60_000);
            continue;
        }
        let dirs = format!(
            "d{}/e{}/f{}",
            rng.range(0, 3),
            rng.range(0, 3),
            rng.range(0, 3)
        );
        let url = match rng.range(0, 6) {
            0 => format!("https://www.nexmark.com/{dirs}/item.htm?query=1"),
            1 => "channel_id=77&https://short".to_string(),
            2 => "https://x.com/a?xchannel_id=5".to_string(),
            _ => format!(
                "https://www.nexmark.com/{dirs}/item.htm?query=1&channel_id={}",
                rng.range(100, 105)
            ),
        };
        let bid = FullBid {
            auction,
            bidder: rng.range(0, 30),
            price: rng.range(1, 100) * [100, 10_000, 1_000_000][rng.range(0, 3) as usize],
            channel: CHANNELS[rng.range(0, 7) as usize].to_string(),
            url,
            time,
            extra: format!(
                "c{}cx{}",
                rng.range(0, 9),
                ["", "cc", "ac"][rng.range(0, 3) as usize]
            ),
        };
        text += &format!("{{\"Bid\":{}}}\n", bid.json());
        bids.push(bid);
    }
    std::fs::write(path, text).unwrap();
    (bids, categories)
}

/// The `detailed` events of `seed` run through `nexmark-Q`: the bids, the auctions'
/// categories and the query's output.
fn detailed_query(
    q: &str,
    seed: u64,
) -> (Vec<FullBid>, BTreeMap<u64, u64>, Vec<serde_json::Value>) {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("nexmark.jsonl");
    let (bids, categories) = write_detailed(&input, 30_000, seed);
    let got = query(q, &input, &tmp.path().join(q));
    (bids, categories, got)
}

fn rank(price: u64) -> usize {
    if price < 10_000 {
        1
    } else if price < 1_000_000 {
        2
    } else {
        3
    }
}

fn utc(time: i64, format: &str) -> String {
    chrono::DateTime::from_timestamp_millis(time)
        .unwrap()
        .format(format)
        .to_string()
}

#[test]
fn q12_counts_each_bidders_bids_per_10_s_window() {
    let (bids, _, got) = detailed_query("q12", 3);
    let mut counts: BTreeMap<(u64, i64), u64> = BTreeMap::new();
    for b in &bids {
        *counts
            .entry((b.bidder, b.time.div_euclid(10_000) * 10_000))
            .or_default() += 1;
    }
    let expected = counts.iter().map(|(&(bidder, start), n)| {
        serde_json::json!({"bidder": bidder, "bid_count": n, "window_start": start,
            "window_end": start + 10_000})
    });
    assert_eq!(sorted(got), sorted(expected));
}

#[test]
fn q14_converts_and_classifies_the_bids_in_the_price_band() {
    let (bids, _, got) = detailed_query("q14", 4);
    let expected: Vec<_> = (bids.iter())
        .filter(|b| {
            let euros = b.price as f64 * 0.908;
            euros > 1_000_000.0 && euros < 50_000_000.0
        })
        .map(|b| {
            let euros: f64 = format!("{}.{:03}", b.price * 908 / 1000, b.price * 908 % 1000)
                .parse()
                .unwrap();
            let hour = b.time.div_euclid(3_600_000) % 24;
            let kind = if (8..=18).contains(&hour) {
                "dayTime"
            } else if hour <= 6 || hour >= 20 {
                "nightTime"
            } else {
                "otherTime"
            };
            serde_json::json!({"auction": b.auction, "bidder": b.bidder, "price": euros,
                "bid_time_type": kind, "date_time": b.time, "extra": b.extra,
                "c_counts": b.extra.matches('c').count()})
        })
        .collect();
    assert!(
        expected.len() > 1_000 && expected.len() < bids.len() / 2,
        "{}",
        expected.len()
    );
    let kinds = ["dayTime", "nightTime", "otherTime"];
    assert!(kinds
        .iter()
        .all(|k| expected.iter().any(|r| r["bid_time_type"] == *k)));
    assert_eq!(sorted(got), sorted(expected));
}

/// Per group of `key`: bids, bidders and auctions per rank (total first), and the latest time.
type Ranked = ([u64; 4], [BTreeSet<u64>; 4], [BTreeSet<u64>; 4], i64);

fn by_rank<K: Ord>(bids: &[FullBid], key: impl Fn(&FullBid) -> K) -> BTreeMap<K, Ranked> {
    let mut groups: BTreeMap<K, Ranked> = BTreeMap::new();
    for b in bids {
        let g = groups.entry(key(b)).or_default();
        for i in [0, rank(b.price)] {
            g.0[i] += 1;
            g.1[i].insert(b.bidder);
            g.2[i].insert(b.auction);
        }
        g.3 = g.3.max(b.time);
    }
    groups
}

/// The `{"day", "total_bids", …}` fields of q15 and q16 for one group.
fn rank_fields(
    day: i64,
    (bids, bidders, auctions, _): &Ranked,
) -> serde_json::Map<String, serde_json::Value> {
    let mut row = serde_json::Map::new();
    row.insert("day".into(), utc(day * 86_400_000, "%Y-%m-%d").into());
    for (i, name) in ["total", "rank1", "rank2", "rank3"].iter().enumerate() {
        row.insert(format!("{name}_bids"), bids[i].into());
        row.insert(format!("{name}_bidders"), bidders[i].len().into());
        row.insert(format!("{name}_auctions"), auctions[i].len().into());
    }
    row
}

#[test]
fn q15_counts_each_days_bids_bidders_and_auctions_by_rank() {
    let (bids, _, got) = detailed_query("q15", 5);
    let days = by_rank(&bids, |b| b.time.div_euclid(86_400_000));
    assert_eq!(days.len(), 2, "the input crosses midnight");
    let expected = days
        .iter()
        .map(|(&day, g)| serde_json::Value::Object(rank_fields(day, g)));
    assert_eq!(sorted(got), sorted(expected));
}

#[test]
fn q16_counts_each_channels_bids_per_day_with_its_last_minute() {
    let (bids, _, got) = detailed_query("q16", 6);
    let groups = by_rank(&bids, |b| {
        (b.channel.clone(), b.time.div_euclid(86_400_000))
    });
    let expected = groups.iter().map(|((channel, day), g)| {
        let mut row = rank_fields(*day, g);
        row.insert("channel".into(), channel.clone().into());
        row.insert("minute".into(), utc(g.3, "%H:%M").into());
        serde_json::Value::Object(row)
    });
    assert_eq!(sorted(got), sorted(expected));
}

#[test]
fn q17_sums_each_auctions_prices_per_day() {
    let (bids, _, got) = detailed_query("q17", 7);
    let mut groups: BTreeMap<(u64, i64), Vec<u64>> = BTreeMap::new();
    for b in &bids {
        groups
            .entry((b.auction, b.time.div_euclid(86_400_000)))
            .or_default()
            .push(b.price);
    }
    let expected = groups.iter().map(|(&(auction, day), prices)| {
        let count = |r| prices.iter().filter(|&&p| rank(p) == r).count();
        let sum: u64 = prices.iter().sum();
        serde_json::json!({"auction": auction, "day": utc(day * 86_400_000, "%Y-%m-%d"),
            "total_bids": prices.len(), "rank1_bids": count(1), "rank2_bids": count(2),
            "rank3_bids": count(3), "min_price": prices.iter().min(), "max_price": prices.iter().max(),
            "avg_price": sum as f64 / prices.len() as f64, "sum_price": sum})
    });
    let got: Vec<_> = got
        .into_iter()
        .map(|mut row| {
            // serde_json reads a double to within one unit in the last place.
            let avg = row["avg_price"].as_f64().unwrap();
            row["avg_price"] = serde_json::json!((avg * 1e6).round() / 1e6);
            row
        })
        .collect();
    let expected = expected.map(|mut row| {
        let avg = row["avg_price"].as_f64().unwrap();
        row["avg_price"] = serde_json::json!((avg * 1e6).round() / 1e6);
        row
    });
    assert_eq!(sorted(got), sorted(expected));
}

/// Each `key` group's bids in event-time order, ties in input order.
fn in_time_order<K: Ord>(
    bids: &[FullBid],
    key: impl Fn(&FullBid) -> K,
) -> BTreeMap<K, Vec<FullBid>> {
    let mut groups: BTreeMap<K, Vec<FullBid>> = BTreeMap::new();
    for b in bids {
        groups.entry(key(b)).or_default().push(b.clone());
    }
    for bids in groups.values_mut() {
        bids.sort_by_key(|b| b.time); // stable: ties stay in input order
    }
    groups
}

#[test]
fn q18_emits_each_bidders_newest_bid_on_each_auction() {
    let (bids, _, got) = detailed_query("q18", 8);
    let mut expected = Vec::new();
    for bids in in_time_order(&bids, |b| (b.bidder, b.auction)).values() {
        let mut last = None;
        for b in bids {
            if last.is_none_or(|t| b.time > t) {
                last = Some(b.time);
                expected.push(b.json());
            }
        }
    }
    assert_eq!(sorted(got), sorted(expected));
}

#[test]
fn q19_ranks_each_auctions_ten_highest_bids_at_each_change() {
    let (bids, _, got) = detailed_query("q19", 9);
    let mut expected = Vec::new();
    for bids in in_time_order(&bids, |b| b.auction).values() {
        let mut top: Vec<FullBid> = Vec::new();
        for b in bids {
            // Equal prices rank by the order taken: the newcomer goes after them.
            let mut ranking = top.clone();
            ranking.push(b.clone());
            ranking.sort_by_key(|r| std::cmp::Reverse(r.price));
            ranking.truncate(10);
            let id = |r: &FullBid| (r.time, r.extra.clone(), r.bidder, r.price);
            let entered =
                ranking.len() > top.len() || ranking.iter().zip(&top).any(|(r, t)| id(r) != id(t));
            if entered {
                for (i, r) in ranking.iter().enumerate() {
                    let mut row = r.json();
                    row["rank_number"] = (i + 1).into();
                    expected.push(row);
                }
                top = ranking;
            }
        }
    }
    assert!(got.iter().any(|r| r["rank_number"] == 10));
    assert_eq!(sorted(got), sorted(expected));
}

#[test]
fn q20_expands_the_bids_on_auctions_of_category_10() {
    let (bids, categories, got) = detailed_query("q20", 10);
    let expected: Vec<_> = (bids.iter())
        .filter(|b| categories.get(&b.auction) == Some(&10))
        .map(|b| {
            let mut row = b.json();
            for (k, v) in [
                ("item_name", serde_json::json!(format!("i{}", b.auction))),
                ("description", "d".into()),
                ("initial_bid", 5.into()),
                ("reserve", 9.into()),
                ("seller", 7.into()),
                ("category", 10.into()),
                ("auction_extra", "x".into()),
            ] {
                row[k] = v;
            }
            row
        })
        .collect();
    assert!(expected.len() > 1_000, "{}", expected.len());
    // The auction's times are its own: compare them apart.
    let strip = |rows: Vec<serde_json::Value>| -> Vec<String> {
        sorted(rows.into_iter().map(|mut r| {
            let o = r.as_object_mut().unwrap();
            o.remove("auction_date_time");
            o.remove("expires");
            r
        }))
    };
    for row in &got {
        let (opened, closes) = (
            row["auction_date_time"].as_i64().unwrap(),
            row["expires"].as_i64().unwrap(),
        );
        assert_eq!(closes, opened + 60_000, "{row}");
    }
    assert_eq!(strip(got), strip(expected));
}

#[test]
fn q21_gives_each_bid_the_id_of_its_channel() {
    let (bids, _, got) = detailed_query("q21", 11);
    let expected = bids.iter().filter_map(|b| {
        let known = ["apple", "google", "facebook", "baidu"]
            .iter()
            .position(|c| b.channel.to_lowercase() == *c);
        let id = match known {
            Some(i) => i.to_string(),
            None if b.url.starts_with("channel_id=") => {
                b.url["channel_id=".len()..].split('&').next()?.to_string()
            }
            None => b
                .url
                .split("&channel_id=")
                .nth(1)?
                .split('&')
                .next()?
                .to_string(),
        };
        Some(
            serde_json::json!({"auction": b.auction, "bidder": b.bidder, "price": b.price,
            "channel": b.channel, "channel_id": id}),
        )
    });
    let expected = sorted(expected);
    assert!(
        expected.len() < bids.len() && expected.iter().any(|r| r.contains("\"channel_id\":\"77\""))
    );
    assert_eq!(sorted(got), expected);
}

#[test]
fn q22_splits_each_bids_url_into_directories() {
    let (bids, _, got) = detailed_query("q22", 12);
    let expected = bids.iter().map(|b| {
        let parts: Vec<&str> = b.url.split('/').collect();
        let dir = |i: usize| parts.get(i).map(|s| s.to_string());
        serde_json::json!({"auction": b.auction, "bidder": b.bidder, "price": b.price,
            "channel": b.channel, "dir1": dir(3), "dir2": dir(4), "dir3": dir(5)})
    });
    assert_eq!(sorted(got), sorted(expected));
}

#[test]
fn q13_joins_each_bid_with_its_side_row() {
    let tmp = tempfile::tempdir().unwrap();
    let (input, side) = (
        tmp.path().join("nexmark.jsonl"),
        tmp.path().join("side.jsonl"),
    );
    let (bids, _) = write_detailed(&input, 30_000, 13);
    // Rows for the auctions with an even id; auction 0's row is replaced by a later one.
    let mut rows: BTreeMap<u64, String> = BTreeMap::new();
    let mut text = String::new();
    for key in (0..40).step_by(2).chain([0]) {
        let value = format!("v{key}-{}", rows.len());
        text += &format!("{{\"key\":{key},\"value\":\"{value}\"}}\n");
        rows.insert(key, value);
    }
    std::fs::write(&side, text).unwrap();
    let out = tmp.path().join("q13");
    let nexmark = format!("nexmark={}", file_arg(&input));
    let side = format!("side={}", file_arg(&side));
    let (nexmark, side, sink) = (&nexmark, &side, &file_arg(&out));
    run_ok(&[
        "run",
        "nexmark-q13",
        "--source",
        nexmark,
        "--source",
        side,
        "--sink",
        sink,
    ]);
    let [got, late, dead] = all_outputs(&out);
    assert!(late.is_empty() && dead.is_empty(), "{late:?} {dead:?}");
    let expected = bids.iter().filter_map(|b| {
        let value = rows.get(&(b.auction % 10_000))?;
        Some(
            serde_json::json!({"auction": b.auction, "bidder": b.bidder, "price": b.price,
            "date_time": b.time, "value": value}),
        )
    });
    let expected = sorted(expected);
    assert!(expected.iter().any(|r| r.contains("\"value\":\"v0-20\"")));
    let got = got.iter().map(|l| serde_json::from_str(l).unwrap());
    assert_eq!(sorted(got), expected);
}
