//! The generator's promises, measured on its output: every scenario decodes into its typed
//! event, a seed reproduces the bytes, and each realism knob moves the statistic it names.

use spate_actors::events::{
    Click, IdFormat, LoginAttempt, SensorReading, Transaction, VehiclePing,
};
use spate_loadgen::generate::Pace;
use spate_loadgen::knobs::Skew;
use spate_loadgen::{generate, scenario, Knobs, Limits, Output, RateShape};
use std::collections::HashMap;

const BASE: i64 = 1_767_225_600_000;

/// Generates `n` records of `name` with `knobs` (unpaced, 1,000 records/s of event time).
fn lines(name: &str, knobs: &Knobs, n: u64) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("out.jsonl");
    let mut out = Output::open(&format!("file:{}", path.display()), name).unwrap();
    let pace = Pace {
        shape: RateShape::Constant(1_000.0),
        paced: false,
        base_ms: BASE,
    };
    let mut s = scenario::by_name(name, BASE, IdFormat::Int).unwrap();
    let report = generate(
        s.as_mut(),
        knobs,
        &pace,
        Limits {
            events: Some(n),
            duration: None,
        },
        &mut out,
    )
    .unwrap();
    assert_eq!(report.events, n);
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn field(line: &str, name: &str) -> i64 {
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    v[name].as_i64().unwrap()
}

#[test]
fn every_scenario_decodes_into_its_event_type_and_is_deterministic() {
    let knobs = Knobs::default();
    for name in scenario::NAMES {
        let a = lines(name, &knobs, 2_000);
        assert_eq!(
            a,
            lines(name, &knobs, 2_000),
            "{name}: same seed, different output"
        );
        let other = Knobs {
            seed: 2,
            ..knobs.clone()
        };
        assert_ne!(
            a,
            lines(name, &other, 2_000),
            "{name}: the seed changes nothing"
        );
        for line in &a {
            let ok = match name {
                "transactions" => serde_json::from_str::<Transaction>(line).is_ok(),
                "clicks" => serde_json::from_str::<Click>(line).is_ok(),
                "sensors" => serde_json::from_str::<SensorReading>(line).is_ok(),
                "traffic" => serde_json::from_str::<VehiclePing>(line).is_ok(),
                "logins" => serde_json::from_str::<LoginAttempt>(line).is_ok(),
                "nexmark" => serde_json::from_str::<nexmark::event::Event>(line).is_ok(),
                _ => unreachable!(),
            };
            assert!(ok, "{name}: cannot decode {line}");
        }
    }
}

#[test]
fn skew_concentrates_keys() {
    let top_share = |skew: Skew| {
        let knobs = Knobs {
            keys: 1_000,
            skew,
            ..Knobs::default()
        };
        let mut counts: HashMap<i64, u32> = HashMap::new();
        for l in lines("transactions", &knobs, 20_000) {
            *counts.entry(field(&l, "user_id")).or_default() += 1;
        }
        assert!(counts.keys().all(|k| (0..1_000).contains(k)));
        *counts.values().max().unwrap() as f64 / 20_000.0
    };
    let (uniform, zipf) = (top_share(Skew::Uniform), top_share(Skew::Zipf(1.2)));
    assert!(uniform < 0.005, "uniform top key share {uniform}");
    assert!(zipf > 0.15, "zipf:1.2 top key share {zipf}");
}

/// Fraction of records whose event time is below the newest one before it, and fraction more
/// than `behind_ms` below it.
fn disorder(lines: &[String], behind_ms: i64) -> (f64, f64) {
    let (mut max, mut ooo, mut far) = (i64::MIN, 0, 0);
    for l in lines {
        let t = field(l, "event_ms");
        ooo += (t < max) as u32;
        far += (t < max.saturating_sub(behind_ms)) as u32;
        max = max.max(t);
    }
    (
        ooo as f64 / lines.len() as f64,
        far as f64 / lines.len() as f64,
    )
}

#[test]
fn disorder_and_lateness_follow_their_knobs() {
    let none = Knobs {
        out_of_order: 0.0,
        ..Knobs::default()
    };
    assert_eq!(disorder(&lines("sensors", &none, 10_000), 0), (0.0, 0.0));
    let some = Knobs {
        out_of_order: 0.3,
        max_delay_ms: 2_000,
        ..Knobs::default()
    };
    let (ooo, far) = disorder(&lines("sensors", &some, 10_000), 3_000);
    assert!((0.2..0.4).contains(&ooo), "out of order {ooo}");
    assert_eq!(far, 0.0, "nothing beyond --max-delay");
    let late = Knobs {
        out_of_order: 0.0,
        late: 0.02,
        late_delay_ms: 60_000,
        ..Knobs::default()
    };
    let (_, far) = disorder(&lines("sensors", &late, 20_000), 59_000);
    assert!((0.01..0.03).contains(&far), "very late {far}");
}

#[test]
fn malformed_fraction_is_what_was_asked() {
    let knobs = Knobs {
        malformed: 0.05,
        ..Knobs::default()
    };
    let all = lines("transactions", &knobs, 20_000);
    let bad = all
        .iter()
        .filter(|l| serde_json::from_str::<Transaction>(l).is_err())
        .count();
    let share = bad as f64 / all.len() as f64;
    assert!((0.04..0.06).contains(&share), "malformed share {share}");
}

#[test]
fn burstiness_makes_runs_of_one_key() {
    let repeat_share = |burstiness: f64| {
        let knobs = Knobs {
            keys: 100_000,
            burstiness,
            ..Knobs::default()
        };
        let keys: Vec<i64> = lines("clicks", &knobs, 16_000)
            .iter()
            .map(|l| field(l, "user_id"))
            .collect();
        keys.windows(2).filter(|w| w[0] == w[1]).count() as f64 / keys.len() as f64
    };
    assert!(repeat_share(0.0) < 0.01);
    let bursty = repeat_share(0.5);
    assert!((0.4..0.55).contains(&bursty), "repeat share {bursty}");
}

#[test]
fn paced_runs_keep_the_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let mut out = Output::open("null", "transactions").unwrap();
    let pace = Pace {
        shape: RateShape::Constant(4_000.0),
        paced: true,
        base_ms: BASE,
    };
    let mut s = scenario::by_name("transactions", BASE, IdFormat::Int).unwrap();
    let limits = Limits {
        events: None,
        duration: Some(std::time::Duration::from_millis(1_500)),
    };
    let report = generate(s.as_mut(), &Knobs::default(), &pace, limits, &mut out).unwrap();
    drop(tmp);
    assert_eq!(report.events, 6_000, "the schedule decides the count");
    let secs = report.elapsed.as_secs_f64();
    // Paced: it must take the scheduled 1.5 s, not finish early; a loaded machine may add a little.
    assert!((1.45..2.5).contains(&secs), "took {secs} s");
    assert!(
        report.kept_up(),
        "fell behind at 4,000/s: {:?}",
        report.max_lag
    );
    assert!((report.asked_rate.unwrap() - 4_000.0).abs() < 50.0);
}
