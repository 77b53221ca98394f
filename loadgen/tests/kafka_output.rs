//! The Kafka output against a real broker (tansu): every generated record arrives once, keyed
//! by its pipeline key, each key in exactly one partition, and the payloads are the same
//! records the file output writes for that seed; `pipe` copies a topic record for record.

#[path = "../../actors/tests/support/tansu.rs"]
mod tansu;

use spate_actors::events::IdFormat;
use spate_loadgen::generate::Pace;
use spate_loadgen::{generate, scenario, KafkaOptions, Knobs, Limits, Output, RateShape};
use std::collections::HashMap;

const BASE: i64 = 1_767_225_600_000;

fn write(to: &str, kafka: &KafkaOptions, n: u64) {
    let mut out = Output::open_with(to, "transactions", kafka).unwrap();
    let pace = Pace {
        shape: RateShape::Constant(1_000.0),
        paced: false,
        base_ms: BASE,
    };
    let mut s = scenario::by_name("transactions", BASE, IdFormat::Int).unwrap();
    let knobs = Knobs {
        keys: 200,
        malformed: 0.01,
        ..Knobs::default()
    };
    let limits = Limits {
        events: Some(n),
        duration: None,
    };
    generate(s.as_mut(), &knobs, &pace, limits, &mut out).unwrap();
}

#[test]
fn kafka_output_keys_each_record_by_its_pipeline_key() {
    let broker = tansu::Tansu::start();
    let kafka = KafkaOptions {
        partitions: 3,
        ..KafkaOptions::default()
    };
    write(&broker.url("tx"), &kafka, 5_000);
    let records = broker.read_topic("tx");
    assert_eq!(records.len(), 5_000);

    let mut partition_of_key: HashMap<String, i32> = HashMap::new();
    for r in &records {
        let key = r.key.clone().expect("every record is keyed");
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.payload) {
            if let Some(user) = v.get("user_id").and_then(|u| u.as_u64()) {
                assert_eq!(key, user.to_string(), "the key is the record's user");
            }
            if let Some(user) = v.get("user_id").and_then(|u| u.as_str()) {
                assert_eq!(key, user, "the key is the record's user");
            }
        }
        let p = *partition_of_key.entry(key.clone()).or_insert(r.partition);
        assert_eq!(p, r.partition, "key {key} is in two partitions");
    }
    let used: std::collections::HashSet<i32> = partition_of_key.values().copied().collect();
    assert_eq!(used.len(), 3, "200 keys spread over all 3 partitions");

    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("tx.jsonl");
    write(&format!("file:{}", file.display()), &kafka, 5_000);
    let mut expected: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let mut got: Vec<String> = records.into_iter().map(|r| r.payload).collect();
    expected.sort();
    got.sort();
    assert!(
        got == expected,
        "Kafka payloads differ from the file output"
    );
}

/// `pipe` copies 100,000 records partition N to partition N with their keys, in order, on the
/// scale broker (tansu on PostgreSQL, where reading all partitions from one queue stalled
/// after 30,000–110,000 records).
#[test]
fn pipe_copies_a_topic_record_for_record() {
    let broker = tansu::Tansu::start_postgres();
    let kafka = KafkaOptions {
        partitions: 4,
        ..KafkaOptions::default()
    };
    write(&broker.url("tx"), &kafka, 100_000);
    let topic = |url: &str| {
        spate::io::kafka::KafkaTopic::parse("--from", url)
            .unwrap()
            .unwrap()
    };
    let (from, to) = (topic(&broker.url("tx")), topic(&broker.url("copy")));
    let report = spate_loadgen::pipe::pipe(&from, &to).unwrap();
    assert_eq!(report.records, 100_000);
    let strip = |records: Vec<tansu::KafkaRecord>| -> Vec<(i32, Option<String>, String)> {
        records
            .into_iter()
            .map(|r| (r.partition, r.key, r.payload))
            .collect()
    };
    let original = strip(broker.read_topic("tx"));
    assert_eq!(original.len(), 100_000);
    assert!(
        strip(broker.read_topic("copy")) == original,
        "the copy differs"
    );
}
