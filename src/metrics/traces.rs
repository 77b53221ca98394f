//! OpenTelemetry traces of a job's epochs, exported over OTLP/HTTP (protobuf) when `spate run
//! --otlp-endpoint URL` is given: one `epoch` span per committed epoch, from the previous cut to
//! its commit, with a child span per phase (`read`, `process`, `seal`, `changelog_flush` with a
//! changelog, `commit`), and a `checkpoint` span per partition checkpoint, a child of its
//! epoch's span. The runtime measures the phases anyway (see [`EpochTimes`]); the spans are
//! made from those instants once the epoch is committed, so tracing adds no work on the epoch's
//! path, and a batch processor on a thread of its own sends them (every 5 s, and at the end of
//! the job).

use super::status::EpochTimes;
use crate::checkpoint::Epoch;
use crate::io::sink::EpochStats;
use crate::{Error, Result};
use opentelemetry::trace::{Span, SpanContext, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// How many committed epochs' span contexts are kept for their checkpoints' spans (a
/// partition checkpoints an epoch soon after its commit).
const KEPT_EPOCHS: usize = 64;

/// How long the end of a job waits for the last spans to be sent.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// The job's tracer and the span contexts of its recent epochs.
pub(super) struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    epochs: Mutex<BTreeMap<Epoch, SpanContext>>,
}

impl Traces {
    /// Exports `pipeline`'s spans to the OTLP/HTTP collector at `endpoint` (its base URL, such
    /// as `http://127.0.0.1:4318`; spans go to `/v1/traces` under it, or to the URL itself when
    /// it ends so). A collector that cannot be reached is logged as an error at each export;
    /// the job goes on.
    pub(super) fn start(endpoint: &str, pipeline: &str) -> Result<Self> {
        let url = traces_url(endpoint)?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(url)
            .with_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| {
                Error::config(
                    "--otlp-endpoint",
                    endpoint,
                    format!("cannot export there: {e}"),
                )
            })?;
        let resource = Resource::builder()
            .with_service_name("spate")
            .with_attribute(KeyValue::new("spate.pipeline", pipeline.to_string()))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("spate");
        Ok(Traces {
            provider,
            tracer,
            epochs: Mutex::default(),
        })
    }

    /// The spans of committed epoch `epoch`: `epoch` with its `stats`, and a child per phase
    /// of `times` (`changelog_flush` only for a job with a `changelog`).
    pub(super) fn epoch(
        &self,
        epoch: Epoch,
        stats: &EpochStats,
        times: &EpochTimes,
        changelog: bool,
    ) {
        let wall = WallClock::now();
        let parent = (self.tracer.span_builder("epoch"))
            .with_start_time(wall.at(times.previous_cut))
            .with_attributes([
                KeyValue::new("spate.epoch", epoch as i64),
                KeyValue::new("spate.records_in", stats.records_in as i64),
                KeyValue::new("spate.outputs", stats.outputs as i64),
                KeyValue::new("spate.late", stats.late as i64),
                KeyValue::new("spate.dead_letters", stats.dead_letters as i64),
                KeyValue::new("spate.watermark_ms", stats.watermark),
            ])
            .start(&self.tracer);
        let cx = Context::current_with_span(parent);
        let mut phases = vec![
            ("read", times.previous_cut, times.cut),
            ("process", times.cut, times.recorded),
            ("seal", times.recorded, times.staged),
        ];
        if changelog {
            phases.push(("changelog_flush", times.staged, times.flushed));
        }
        phases.push(("commit", times.flushed, times.committed));
        for (name, from, to) in phases {
            self.child(&cx, name, wall.at(from), wall.at(to), Vec::new());
        }
        cx.span().end_with_timestamp(wall.at(times.committed));
        let mut epochs = self.epochs.lock().unwrap_or_else(|e| e.into_inner());
        epochs.insert(epoch, cx.span().span_context().clone());
        while epochs.len() > KEPT_EPOCHS {
            epochs.pop_first();
        }
    }

    /// The span of `partition`'s checkpoint of `epoch`, which just ended after `millis`.
    pub(super) fn checkpoint(&self, partition: u32, epoch: Epoch, millis: f64, bytes: u64) {
        let end = SystemTime::now();
        let start = end - Duration::from_secs_f64(millis.max(0.0) / 1e3);
        let parent = (self.epochs.lock().unwrap_or_else(|e| e.into_inner()))
            .get(&epoch)
            .cloned();
        let cx = match parent {
            Some(parent) => Context::new().with_remote_span_context(parent),
            None => Context::new(),
        };
        let attributes = vec![
            KeyValue::new("spate.epoch", epoch as i64),
            KeyValue::new("spate.partition", partition as i64),
            KeyValue::new("spate.bytes", bytes as i64),
        ];
        self.child(&cx, "checkpoint", start, end, attributes);
    }

    /// A span `name` under `cx` from `start` to `end`.
    fn child(
        &self,
        cx: &Context,
        name: &'static str,
        start: SystemTime,
        end: SystemTime,
        attributes: Vec<KeyValue>,
    ) {
        let mut span = (self.tracer.span_builder(name))
            .with_start_time(start)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, cx);
        span.end_with_timestamp(end);
    }
}

impl Traces {
    /// Sends the spans not sent yet (the end of a run; the exporter's timeout bounds the wait).
    pub(super) fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::warn!("the last traces were not all sent: {e}");
        }
    }
}

impl Drop for Traces {
    /// Sends the spans not sent yet, waiting at most [`SHUTDOWN_TIMEOUT`].
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
            tracing::warn!("the last traces were not all sent: {e}");
        }
    }
}

/// The OTLP/HTTP traces URL of `endpoint`, or why it is not one.
fn traces_url(endpoint: &str) -> Result<String> {
    let refused = |why: &str| Error::config("--otlp-endpoint", endpoint, why);
    let base = endpoint.trim_end_matches('/');
    if base.starts_with("https://") {
        return Err(refused(
            "spate exports traces over plain HTTP only; give a collector on this host or network (http://HOST:4318), which can forward them over TLS",
        ));
    }
    if !base.starts_with("http://") {
        return Err(refused(
            "give the collector's OTLP/HTTP address as http://HOST:PORT (4318 by convention)",
        ));
    }
    Ok(match base.ends_with("/v1/traces") {
        true => base.to_string(),
        false => format!("{base}/v1/traces"),
    })
}

/// Turns the runtime's monotonic instants into wall-clock times, from one reading of both.
struct WallClock {
    instant: Instant,
    system: SystemTime,
}

impl WallClock {
    fn now() -> Self {
        WallClock {
            instant: Instant::now(),
            system: SystemTime::now(),
        }
    }

    /// The wall-clock time of `instant` (at or before the reading).
    fn at(&self, instant: Instant) -> SystemTime {
        self.system - self.instant.saturating_duration_since(instant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_a_base_url_or_the_traces_url() {
        let url = |e| traces_url(e).unwrap();
        assert_eq!(
            url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(url("http://c/v1/traces"), "http://c/v1/traces");
        let refused = traces_url("127.0.0.1:4318").unwrap_err().to_string();
        assert!(refused.contains("--otlp-endpoint"), "{refused}");
        let refused = traces_url("https://c:4318").unwrap_err().to_string();
        assert!(refused.contains("plain HTTP only"), "{refused}");
    }

    #[test]
    fn instants_map_to_wall_clock_times_before_the_reading() {
        let earlier = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let clock = WallClock::now();
        let gap = clock.system.duration_since(clock.at(earlier)).unwrap();
        assert!(gap >= Duration::from_millis(20), "{gap:?}");
        assert_eq!(clock.at(clock.instant), clock.system);
    }
}
