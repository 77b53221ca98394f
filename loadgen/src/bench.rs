//! `spate-loadgen bench`: feeds a pipeline at a set rate with event time = creation time, and
//! measures how long after a result became possible it became visible. The pipeline runs in
//! process (fed by its generator, its results caught by a sink that measures them), or in an
//! external `spate run` joined through Kafka: bench then produces the pipeline's input to one
//! topic and reads the results from another as they arrive.
//!
//! A window's result is possible once an event with event time at or past `window_end +
//! watermark delay` exists — that event advances the watermark past the window — and such an
//! event is created at that wall-clock time. So a result's latency is its commit time minus
//! `window_end + delay`: the delay the engine adds (epoch trigger, processing, recording,
//! commit), not the window or watermark wait the pipeline asked for. Results flushed when the
//! input ends (watermark to +∞) were not caused by data and are counted apart.

use anyhow::{anyhow, bail, Result};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use spate::checkpoint::Epoch;
use spate::io::sink::{
    CustomSink, EpochSink, EpochStats, OutputStream, SinkSpec, Staged, StagedPayload,
};
use spate::io::source::{GenOptions, SourceSpec};
use spate::runtime::{RunConfig, TriggerSpec};
use spate::time::{now_ms, Millis};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Pipeline name (see `spate list`).
    pub pipeline: String,
    /// Events per second.
    pub rate: f64,
    /// How long to generate.
    pub duration: Duration,
    /// Distinct keys.
    pub keys: u64,
    /// The engine's trigger.
    pub trigger: TriggerSpec,
    /// Key partitions (default: the engine's).
    pub partitions: Option<u32>,
    /// Results committed before this are left out of the summary (still in the series).
    pub warmup: Duration,
    /// Generator seed.
    pub seed: u64,
    /// Run against an external job through Kafka instead of in process.
    pub kafka: Option<KafkaBench>,
    /// In process: the job's state directory (`None`: a temporary store, which skips the
    /// fsync a state directory costs at every epoch).
    pub state_dir: Option<std::path::PathBuf>,
}

/// The Kafka topics of an external `spate run`: bench writes its input to `to` and reads its
/// results from `from`.
#[derive(Debug, Clone)]
pub struct KafkaBench {
    /// The job's source topic.
    pub to: spate::io::kafka::KafkaTopic,
    /// The job's sink topic.
    pub from: spate::io::kafka::KafkaTopic,
    /// How long to keep reading results once the input is written.
    pub drain: Duration,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    /// Results measured.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    fn of(h: &Histogram<u64>) -> Self {
        let ms = |us: u64| us as f64 / 1_000.0;
        Percentiles {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// One second of the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Second {
    /// Seconds since the start.
    pub second: u64,
    /// Records the engine committed as read in this second.
    pub records_in: u64,
    /// Results made visible in this second (flushed ones excluded).
    pub results: u64,
    /// Latency of those results.
    pub latency: Percentiles,
}

/// The outcome of a bench run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BenchReport {
    /// The pipeline.
    pub pipeline: String,
    /// The trigger, as given.
    pub trigger: String,
    /// Events per second asked.
    pub rate: f64,
    /// Events generated and read.
    pub records_in: u64,
    /// Results whose latency was measured.
    pub results: u64,
    /// Results flushed at the end of input (not measured).
    pub flushed: u64,
    /// Late records (`None`: counted by an external job, not by bench).
    #[serde(default)]
    pub late: Option<u64>,
    /// Dead letters (`None`: counted by an external job, not by bench).
    #[serde(default)]
    pub dead_letters: Option<u64>,
    /// Records in per second of wall time.
    pub throughput_in: f64,
    /// Results out per second of wall time.
    pub throughput_out: f64,
    /// Latency after the warm-up.
    pub latency: Percentiles,
    /// Second by second.
    pub seconds: Vec<Second>,
}

struct SecondHist {
    records_in: u64,
    results: u64,
    hist: Histogram<u64>,
}

/// Result latencies and input counts, overall and per second of the run.
struct Recorder {
    /// The pipeline's watermark delay: a result is possible at `window_end + delay`.
    delay: Millis,
    warmup: Duration,
    started_us: u64,
    progress: bool,
    total: Histogram<u64>,
    seconds: Vec<SecondHist>,
    results: u64,
    flushed: u64,
    records_in: u64,
    late: u64,
    dead_letters: u64,
}

impl Recorder {
    fn new(delay: Millis, warmup: Duration) -> Self {
        Recorder {
            delay,
            warmup,
            started_us: now_us(),
            progress: std::io::stderr().is_terminal(),
            total: histogram(),
            seconds: Vec::new(),
            results: 0,
            flushed: 0,
            records_in: 0,
            late: 0,
            dead_letters: 0,
        }
    }

    /// The slot of the second `now` (µs since the Unix epoch) falls in.
    fn second(&mut self, now: u64) -> usize {
        let second = (now.saturating_sub(self.started_us) / 1_000_000) as usize;
        while self.seconds.len() <= second {
            self.seconds.push(SecondHist {
                records_in: 0,
                results: 0,
                hist: histogram(),
            });
        }
        second
    }

    /// Counts `records` read (or written to the job's input) at `now`.
    fn input(&mut self, records: u64, now: u64) {
        let second = self.second(now);
        self.records_in += records;
        self.seconds[second].records_in += records;
    }

    /// Measures result `line` made visible at `now`; `flushed` results (the end of input
    /// closed their window, not data) are only counted.
    fn result(&mut self, line: &[u8], now: u64, flushed: bool) {
        if flushed {
            self.flushed += 1;
            return;
        }
        let second = self.second(now);
        self.results += 1;
        self.seconds[second].results += 1;
        if let Some(end) = window_end(line) {
            let ready_us = (end.saturating_add(self.delay)).max(0) as u64 * 1_000;
            let latency = now.saturating_sub(ready_us).max(1);
            self.seconds[second].hist.saturating_record(latency);
            if Duration::from_micros(now.saturating_sub(self.started_us)) >= self.warmup {
                self.total.saturating_record(latency);
            }
        }
    }

    /// Rewrites the progress line (on a terminal).
    fn show_progress(&self, now: u64) {
        if self.progress {
            let second = now.saturating_sub(self.started_us) / 1_000_000;
            let p99 = self.total.value_at_quantile(0.99) as f64 / 1_000.0;
            eprint!(
                "\r{second:>4} s  in {:>10}  results {:>9}  p99 {p99:>8.1} ms   ",
                self.records_in, self.results
            );
        }
    }

    fn report(
        &self,
        config: &BenchConfig,
        trigger: String,
        elapsed: Duration,
        counts: bool,
    ) -> BenchReport {
        if self.progress {
            eprintln!();
        }
        let secs = elapsed.as_secs_f64().max(1e-9);
        BenchReport {
            pipeline: config.pipeline.clone(),
            trigger,
            rate: config.rate,
            records_in: self.records_in,
            results: self.results,
            flushed: self.flushed,
            late: counts.then_some(self.late),
            dead_letters: counts.then_some(self.dead_letters),
            throughput_in: self.records_in as f64 / secs,
            throughput_out: (self.results + self.flushed) as f64 / secs,
            latency: Percentiles::of(&self.total),
            seconds: self
                .seconds
                .iter()
                .enumerate()
                .map(|(i, s)| Second {
                    second: i as u64,
                    records_in: s.records_in,
                    results: s.results,
                    latency: Percentiles::of(&s.hist),
                })
                .collect(),
        }
    }
}

/// A sink that measures result latency instead of writing results anywhere.
pub struct LatencyProbe {
    recorder: Mutex<Recorder>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// The `window_end` of a result line, if it has one.
fn window_end(line: &[u8]) -> Option<Millis> {
    const KEY: &[u8] = b"\"window_end\":";
    let at = memchr::memmem::find(line, KEY)? + KEY.len();
    let digits = line[at..]
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'-')
        .count();
    std::str::from_utf8(&line[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

/// End-to-end latency of the results an external spate job wrote to a Kafka topic (up to its
/// end offsets now): each record's Kafka timestamp (set when the sink sent it) minus the moment
/// its window could first close, `window_end + delay`, with event time = creation time as the
/// load generator's paced output writes it. Results before `skip_until_ms` (a warm-up) are left
/// out.
pub fn kafka_latency(
    from: &spate::io::kafka::KafkaTopic,
    delay: Millis,
    skip_until_ms: Millis,
) -> Result<Percentiles> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
    let settings = spate::io::kafka::KafkaSettings::default();
    let client = settings.client_config(&from.brokers, &[("group.id", "spate-loadgen-latency")]);
    let partitions = spate::io::kafka::partition_count(&client, from)?
        .ok_or_else(|| anyhow::anyhow!("topic {from} does not exist (--from)"))?;
    let consumer: BaseConsumer = client.create()?;
    let mut list = TopicPartitionList::new();
    let mut remaining = 0u64;
    for p in 0..partitions as i32 {
        let (low, high) = consumer.fetch_watermarks(&from.topic, p, Duration::from_secs(30))?;
        list.add_partition_offset(&from.topic, p, Offset::Offset(low))?;
        remaining += (high - low).max(0) as u64;
    }
    consumer.assign(&list)?;
    let mut hist = histogram();
    while remaining > 0 {
        let message = consumer
            .poll(Duration::from_secs(30))
            .ok_or_else(|| anyhow::anyhow!("no record from {from} for 30 s"))??;
        remaining -= 1;
        let (Some(sent), Some(end)) = (
            message.timestamp().to_millis(),
            message.payload().and_then(window_end),
        ) else {
            continue;
        };
        if sent >= skip_until_ms {
            let micros = (sent - (end + delay)).max(0) as u64 * 1_000;
            hist.saturating_record(micros.max(1));
        }
    }
    Ok(Percentiles::of(&hist))
}

impl LatencyProbe {
    /// A probe for a pipeline whose watermark trails by `delay` ms.
    pub fn new(delay: Millis, warmup: Duration) -> Self {
        LatencyProbe {
            recorder: Mutex::new(Recorder::new(delay, warmup)),
        }
    }
}

impl EpochSink for LatencyProbe {
    fn location(&self, stream: OutputStream) -> String {
        format!(
            "the benchmark's latency probe (which counts {})",
            stream.dir_name()
        )
    }

    fn stage(
        &self,
        epoch: Epoch,
        stream: OutputStream,
        _writer: &str,
        bytes: Vec<u8>,
    ) -> spate::Result<Option<Staged>> {
        // Only results are measured; late records and dead letters are counted from the stats.
        Ok(Staged::in_memory(epoch, stream, bytes).filter(|s| s.stream == OutputStream::Results))
    }

    fn commit(&self, _epoch: Epoch, staged: Vec<Staged>, stats: &EpochStats) -> spate::Result<()> {
        let now = now_us();
        let mut recorder = self.recorder.lock().expect("probe lock");
        recorder.input(stats.records_in, now);
        recorder.late += stats.late;
        recorder.dead_letters += stats.dead_letters;
        for s in staged {
            let StagedPayload::Bytes(bytes) = s.payload else {
                continue;
            };
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                recorder.result(line, now, stats.final_epoch);
            }
        }
        recorder.show_progress(now);
        Ok(())
    }

    fn recover(&self, _committed: Epoch, _recorded: Epoch) -> spate::Result<()> {
        Ok(())
    }

    fn exactly_once(&self) -> bool {
        false
    }
}

/// Runs the bench: in process, or against an external job through Kafka.
pub fn bench(config: &BenchConfig) -> Result<BenchReport> {
    let registry = spate_actors::registry();
    let pipeline = registry.get(&config.pipeline).ok_or_else(|| {
        let names: Vec<&str> = registry.iter().map(|p| p.name()).collect();
        anyhow!(
            "no pipeline named `{}`; available: {}",
            config.pipeline,
            names.join(", ")
        )
    })?;
    if !(config.rate.is_finite() && config.rate > 0.0) {
        bail!(
            "invalid --rate {}: use a positive number of events per second",
            config.rate
        );
    }
    match &config.kafka {
        Some(kafka) => bench_kafka(config, pipeline.watermark_delay(), kafka),
        None => bench_in_process(config, &*pipeline),
    }
}

/// Runs the pipeline in process, fed by its generator, its results caught by a
/// [`LatencyProbe`].
fn bench_in_process(config: &BenchConfig, pipeline: &dyn spate::Runnable) -> Result<BenchReport> {
    if !pipeline.has_generator() {
        bail!(
            "pipeline `{}` has no built-in generator, so bench cannot feed it",
            config.pipeline
        );
    }
    let probe = Arc::new(LatencyProbe::new(pipeline.watermark_delay(), config.warmup));
    let events = (config.rate * config.duration.as_secs_f64()).round() as u64;
    let defaults = RunConfig::default();
    let run = RunConfig {
        source: SourceSpec::Generator,
        sink: SinkSpec::Custom(CustomSink(probe.clone())),
        partitions: config.partitions.unwrap_or(defaults.partitions),
        trigger: config.trigger,
        state_dir: config.state_dir.clone(),
        generator: GenOptions {
            seed: config.seed,
            events: Some(events.max(1)),
            rate: Some(config.rate),
            keys: config.keys,
            // Event time is creation time even when opening the state directory takes a while.
            base_ms: now_ms(),
            realtime: true,
        },
        ..defaults
    };
    let job = pipeline.run(&run)?;
    let trigger = match config.trigger {
        TriggerSpec::Continuous => "continuous".into(),
        TriggerSpec::Interval(d) => format!("{}ms", d.as_millis()),
    };
    let recorder = probe.recorder.lock().expect("probe lock");
    Ok(recorder.report(config, trigger, job.elapsed, true))
}

/// Runs against an external `spate run`: writes the pipeline's input to `kafka.to` at the
/// asked rate (event time = creation time, no disorder) and measures each result as it
/// arrives in `kafka.from`, where it becomes visible to any consumer. The input counted per
/// second is what reached the input topic (its end offsets, sampled every second).
fn bench_kafka(config: &BenchConfig, delay: Millis, kafka: &KafkaBench) -> Result<BenchReport> {
    use crate::generate::{generate, Limits, Pace};
    use crate::knobs::Knobs;
    use crate::output::{KafkaOptions, Output};
    use crate::schedule::RateShape;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

    let scenario_name = crate::scenario::input_of(&config.pipeline).ok_or_else(|| {
        anyhow!(
            "bench does not know the input of pipeline `{}` to write to {}",
            config.pipeline,
            kafka.to
        )
    })?;
    let settings = spate::io::kafka::KafkaSettings::default();
    // The results topic: the job creates it when it starts.
    let client = settings.client_config(
        &kafka.from.brokers,
        &[
            ("group.id", "spate-loadgen-bench"),
            // Some brokers (tansu 0.6) hold every fetch up to this long even when they have
            // records, which then counts into each result's latency; shorter costs the broker
            // more fetches.
            ("fetch.wait.max.ms", "100"),
        ],
    );
    let waited = std::time::Instant::now();
    let partitions = loop {
        if let Some(n) = spate::io::kafka::partition_count(&client, &kafka.from)? {
            break n;
        }
        if waited.elapsed() > Duration::from_secs(120) {
            bail!(
                "the results topic {} (--from) did not appear within 120 s: start `spate run {} --source {} --sink {}`",
                kafka.from, config.pipeline, kafka.to, kafka.from
            );
        }
        if waited.elapsed() < Duration::from_millis(600) {
            eprintln!(
                "spate-loadgen: waiting for {} (--from): start `spate run {} --source {} --sink {}`",
                kafka.from, config.pipeline, kafka.to, kafka.from
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let consumer: BaseConsumer = client.create()?;
    let mut list = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        let (_, high) = consumer.fetch_watermarks(&kafka.from.topic, p, Duration::from_secs(30))?;
        list.add_partition_offset(&kafka.from.topic, p, Offset::Offset(high))?;
    }
    consumer.assign(&list)?;

    let mut out = Output::open_with(
        &kafka.to.to_string(),
        scenario_name,
        &KafkaOptions::default(),
    )?;
    // The input topic exists now (opening the output created it): its end offsets, sampled
    // every second on a thread of their own (each is a round trip to the broker), count what
    // reached it.
    let input_client =
        settings.client_config(&kafka.to.brokers, &[("group.id", "spate-loadgen-bench")]);
    let in_partitions = spate::io::kafka::partition_count(&input_client, &kafka.to)?
        .ok_or_else(|| anyhow!("the input topic {} (--to) is missing", kafka.to))?;
    let input: BaseConsumer = input_client.create()?;
    let input_topic = kafka.to.topic.clone();
    let written = move || -> Result<u64> {
        let mut sum = 0;
        for p in 0..in_partitions as i32 {
            let (_, high) = input.fetch_watermarks(&input_topic, p, Duration::from_secs(30))?;
            sum += high.max(0) as u64;
        }
        Ok(sum)
    };
    let mut scenario =
        crate::scenario::by_name(scenario_name, 0, Default::default()).expect("a known scenario");
    let knobs = Knobs {
        seed: config.seed,
        keys: config.keys,
        out_of_order: 0.0,
        ..Knobs::default()
    };
    let pace = Pace {
        shape: RateShape::parse("constant", config.rate).map_err(|e| anyhow!(e))?,
        paced: true,
        base_ms: now_ms(),
    };
    let limits = Limits {
        events: None,
        duration: Some(config.duration),
    };
    let mut recorder = Recorder::new(delay, config.warmup);
    let mut counted = written()?;
    let started = std::time::Instant::now();
    let mut producer = Some(
        std::thread::Builder::new()
            .name("spate-loadgen-bench".into())
            .spawn(move || generate(scenario.as_mut(), &knobs, &pace, limits, &mut out))?,
    );
    // The sampler sends (time, records written since its last sample) until told to stop.
    let (samples, sampled) = std::sync::mpsc::channel::<(u64, u64)>();
    let (stop_sampling, sampler_stop) = std::sync::mpsc::channel::<()>();
    let sampler = std::thread::Builder::new()
        .name("spate-loadgen-sampler".into())
        .spawn(move || -> Result<()> {
            loop {
                let last = sampler_stop.recv_timeout(Duration::from_secs(1)).is_ok();
                let now = written()?;
                let _ = samples.send((now_us(), now - counted));
                counted = now;
                if last {
                    return Ok(());
                }
            }
        })?;
    let mut produced = None;
    loop {
        if let Some(message) = consumer.poll(Duration::from_millis(50)) {
            let message = message?;
            recorder.result(message.payload().unwrap_or_default(), now_us(), false);
        }
        for (at, records) in sampled.try_iter() {
            recorder.input(records, at);
            recorder.show_progress(at);
        }
        let elapsed = started.elapsed();
        if let Some(thread) = producer.take_if(|t| t.is_finished()) {
            let report = thread
                .join()
                .map_err(|_| anyhow!("the bench's producer thread panicked"))??;
            produced = Some((report, elapsed));
        }
        if let Some((_, at)) = &produced {
            if elapsed >= *at + kafka.drain {
                break;
            }
        }
    }
    let (report, _) = produced.expect("the loop ends once the input is written");
    let _ = stop_sampling.send(());
    sampler
        .join()
        .map_err(|_| anyhow!("the bench's sampler thread panicked"))??;
    for (at, records) in sampled.try_iter() {
        recorder.input(records, at);
    }
    if !report.kept_up() {
        eprintln!(
            "spate-loadgen: the input fell behind the asked {:.0}/s (up to {:.1} s behind schedule)",
            config.rate,
            report.max_lag.as_secs_f64()
        );
    }
    Ok(recorder.report(config, "external".into(), started.elapsed(), false))
}

impl BenchReport {
    /// A human-readable summary table.
    pub fn table(&self) -> String {
        let l = &self.latency;
        let mut t = format!(
            "pipeline {}  trigger {}  rate asked {:.0}/s\n\
             records in   {:>12}   ({:.0}/s)\n\
             results      {:>12}   ({:.0}/s out, {} flushed at end of input)\n\
             {}\n\
             latency ms   p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  ({} results)\n",
            self.pipeline,
            self.trigger,
            self.rate,
            self.records_in,
            self.throughput_in,
            self.results,
            self.throughput_out,
            self.flushed,
            match (self.late, self.dead_letters) {
                (Some(late), Some(dead)) => format!("late {late}  dead letters {dead}"),
                _ => "late records and dead letters: see the external job's topics".into(),
            },
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            l.count
        );
        if l.count == 0 {
            t += "no window closed during the run: run longer than the window size plus the watermark delay (70 s for tx-windows)\n";
        }
        t += "second   records in   results   p50 ms   p99 ms\n";
        for s in &self.seconds {
            t += &format!(
                "{:>6} {:>12} {:>9} {:>8.1} {:>8.1}\n",
                s.second, s.records_in, s.results, s.latency.p50, s.latency.p99
            );
        }
        t
    }

    /// An SVG chart: records in per second, and p99 latency of the results of each second.
    pub fn svg(&self) -> String {
        let (w, h, pad) = (800.0, 220.0, 50.0);
        let n = self.seconds.len().max(2) as f64;
        let panel = |title: &str, y0: f64, values: Vec<f64>, unit: &str, color: &str| {
            let max = values.iter().cloned().fold(0.0, f64::max).max(1e-9);
            let points: Vec<String> = values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    format!(
                        "{:.1},{:.1}",
                        pad + i as f64 / (n - 1.0) * (w - 2.0 * pad),
                        y0 + h - pad - v / max * (h - 2.0 * pad)
                    )
                })
                .collect();
            format!(
                "<text x=\"{pad}\" y=\"{:.0}\" font-size=\"14\">{title}</text>\
                 <line x1=\"{pad}\" y1=\"{b:.0}\" x2=\"{r:.0}\" y2=\"{b:.0}\" stroke=\"#888\"/>\
                 <line x1=\"{pad}\" y1=\"{t:.0}\" x2=\"{pad}\" y2=\"{b:.0}\" stroke=\"#888\"/>\
                 <text x=\"4\" y=\"{t2:.0}\" font-size=\"11\">{max:.0}{unit}</text>\
                 <text x=\"4\" y=\"{b:.0}\" font-size=\"11\">0</text>\
                 <text x=\"{r:.0}\" y=\"{b2:.0}\" font-size=\"11\" text-anchor=\"end\">{secs} s</text>\
                 <polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
                y0 + 20.0,
                points.join(" "),
                b = y0 + h - pad,
                t = y0 + pad,
                t2 = y0 + pad + 4.0,
                b2 = y0 + h - pad + 14.0,
                r = w - pad,
                secs = self.seconds.len(),
            )
        };
        let input = self.seconds.iter().map(|s| s.records_in as f64).collect();
        let p99 = self.seconds.iter().map(|s| s.latency.p99).collect();
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" font-family=\"sans-serif\">\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>{}{}</svg>\n",
            2.0 * h,
            panel(&format!("{} at {:.0}/s ({} trigger): records in per second", self.pipeline, self.rate, self.trigger), 0.0, input, "/s", "#1f77b4"),
            panel("p99 latency of the results made visible in each second", h, p99, " ms", "#d62728"),
        )
    }
}

/// A chart of p99 latency against input rate, one line per trigger, from several bench
/// reports, with the 10 ms and 250 ms marks.
pub fn curve_svg(reports: &[BenchReport]) -> String {
    let (w, h, pad) = (720.0, 420.0, 60.0);
    let max_x = reports.iter().map(|r| r.throughput_in).fold(1.0, f64::max) * 1.05;
    // Latency spans orders of magnitude (an overloaded run is seconds): a log scale from 1 ms.
    let max_y = reports
        .iter()
        .map(|r| r.latency.p99)
        .fold(1_000.0, f64::max)
        * 1.5;
    let x = |v: f64| pad + v / max_x * (w - 2.0 * pad);
    let y = |v: f64| h - pad - v.max(1.0).log10() / max_y.log10() * (h - 2.0 * pad);
    let mut triggers: Vec<&str> = reports.iter().map(|r| r.trigger.as_str()).collect();
    triggers.sort();
    triggers.dedup();
    let colors = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];
    let mut body = String::new();
    for grid in [1.0, 10.0, 100.0, 1_000.0, 10_000.0]
        .into_iter()
        .filter(|g| *g <= max_y)
    {
        body += &format!(
            "<line x1=\"{pad}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#eee\"/><text x=\"4\" y=\"{2:.1}\" font-size=\"11\">{grid} ms</text>",
            y(grid), w - pad, y(grid) + 4.0
        );
    }
    let mut rates: Vec<f64> = reports.iter().map(|r| (r.rate / 1_000.0).round()).collect();
    rates.sort_by(f64::total_cmp);
    rates.dedup();
    for k in rates {
        body += &format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"middle\">{k}k</text>",
            x(k * 1_000.0),
            h - pad + 16.0
        );
    }
    for mark in [10.0, 250.0] {
        body += &format!(
            "<line x1=\"{pad}\" y1=\"{0:.1}\" x2=\"{1:.1}\" y2=\"{0:.1}\" stroke=\"#aaa\" stroke-dasharray=\"4 4\"/><text x=\"{1:.1}\" y=\"{2:.1}\" font-size=\"11\" text-anchor=\"end\">target {mark} ms</text>",
            y(mark), w - pad, y(mark) - 3.0
        );
    }
    for (i, trigger) in triggers.iter().enumerate() {
        let mut points: Vec<&BenchReport> =
            reports.iter().filter(|r| r.trigger == *trigger).collect();
        points.sort_by(|a, b| a.throughput_in.total_cmp(&b.throughput_in));
        let color = colors[i % colors.len()];
        let coords: Vec<String> = points
            .iter()
            .map(|r| format!("{:.1},{:.1}", x(r.throughput_in), y(r.latency.p99)))
            .collect();
        body += &format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            coords.join(" ")
        );
        for r in &points {
            body += &format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{color}\"/>",
                x(r.throughput_in),
                y(r.latency.p99)
            );
        }
        body += &format!("<text x=\"{:.0}\" y=\"{:.0}\" font-size=\"12\" fill=\"{color}\">trigger {trigger}</text>", pad + 10.0, pad + 16.0 * (i as f64 + 1.0));
    }
    let pipeline = reports.first().map_or("", |r| r.pipeline.as_str());
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\">\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
         <text x=\"{pad}\" y=\"24\" font-size=\"14\">{pipeline}: p99 end-to-end latency (ms, log scale) by input rate (events/s)</text>\
         <line x1=\"{pad}\" y1=\"{b}\" x2=\"{r}\" y2=\"{b}\" stroke=\"#444\"/><line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{b}\" stroke=\"#444\"/>\
         <text x=\"{r}\" y=\"{b3}\" font-size=\"11\" text-anchor=\"end\">events/s</text>\
         {body}</svg>\n",
        b = h - pad,
        b3 = h - pad + 32.0,
        r = w - pad,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_window_end() {
        assert_eq!(
            window_end(br#"{"key":1,"window_start":0,"window_end":60000,"count":2}"#),
            Some(60_000)
        );
        assert_eq!(window_end(br#"{"key":1}"#), None);
    }
}
