//! Job metrics through OpenTelemetry, exported for Prometheus: records in, out, late and
//! dead-lettered; epoch and checkpoint durations; checkpoint size; watermark and watermark lag;
//! state keys and stored bytes per partition; partition restarts; Kafka consumer lag,
//! consumer-group rebalances, changelog restores with their durations, and source partitions
//! paused for backpressure, and state expired by a TTL. Served as text on `GET /metrics` at
//! `--metrics-addr` (with `GET /health`) by an HTTP server of its own (`server.rs`).
//! Instruments are updated once per epoch or checkpoint, never per record.

mod server;

use crate::time::{now_ms, Millis, BEFORE_TIME, END_OF_TIME};
use crate::{Error, Result};
use opentelemetry::metrics::{Counter, Gauge, Histogram, MeterProvider};
use opentelemetry::KeyValue;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::Resource;
use server::Server;
use std::net::SocketAddr;
use std::sync::Arc;

/// A cheap, clonable handle on the job's instruments.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Instruments>,
}

struct Instruments {
    _provider: SdkMeterProvider,
    pipeline: KeyValue,
    records_in: Counter<u64>,
    records_out: Counter<u64>,
    late: Counter<u64>,
    dead_letters: Counter<u64>,
    restarts: Counter<u64>,
    epoch_seconds: Histogram<f64>,
    checkpoint_seconds: Histogram<f64>,
    checkpoint_bytes: Histogram<u64>,
    watermark: Gauge<i64>,
    watermark_lag: Gauge<f64>,
    state_keys: Gauge<u64>,
    state_bytes: Gauge<u64>,
    consumer_lag: Gauge<u64>,
    rebalances: Counter<u64>,
    restores: Counter<u64>,
    restore_seconds: Histogram<f64>,
    source_pauses: Counter<u64>,
    state_expired: Counter<u64>,
    /// Held for its `Drop`, which stops the endpoint's thread.
    _server: Option<Server>,
}

impl Metrics {
    /// Instruments for `pipeline`, served at `addr` when given.
    pub fn new(pipeline: &str, addr: Option<SocketAddr>) -> Result<Self> {
        let resource = Resource::builder().with_service_name("spate").build();
        let mut builder = SdkMeterProvider::builder().with_resource(resource);
        let mut server = None;
        if let Some(addr) = addr {
            let registry = prometheus::Registry::new();
            let exporter = opentelemetry_prometheus::exporter()
                .with_registry(registry.clone())
                .build()
                .map_err(|e| {
                    Error::Runtime(format!("cannot set up the Prometheus exporter: {e}"))
                })?;
            builder = builder.with_reader(exporter);
            server = Some(Server::start(addr, registry)?);
        }
        let provider = builder.build();
        let meter = provider.meter("spate");
        let seconds = vec![
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let metrics = Metrics {
            inner: Arc::new(Instruments {
                pipeline: KeyValue::new("pipeline", pipeline.to_string()),
                records_in: meter
                    .u64_counter("spate.records.in")
                    .with_description("Records read from the source")
                    .build(),
                records_out: meter
                    .u64_counter("spate.records.out")
                    .with_description("Results committed to the sink")
                    .build(),
                late: meter
                    .u64_counter("spate.records.late")
                    .with_description("Records behind the watermark, sent to the late output")
                    .build(),
                dead_letters: meter
                    .u64_counter("spate.records.dead_lettered")
                    .with_description("Malformed records sent to the dead-letter output")
                    .build(),
                restarts: meter
                    .u64_counter("spate.partition.restarts")
                    .with_description("Key-partition actors restarted from their checkpoint")
                    .build(),
                epoch_seconds: meter
                    .f64_histogram("spate.epoch.duration")
                    .with_unit("s")
                    .with_boundaries(seconds.clone())
                    .with_description("Time from an epoch's cut to its commit")
                    .build(),
                checkpoint_seconds: meter
                    .f64_histogram("spate.checkpoint.duration")
                    .with_unit("s")
                    .with_boundaries(seconds)
                    .with_description("Time to write one partition's checkpoint to sled")
                    .build(),
                checkpoint_bytes: meter
                    .u64_histogram("spate.checkpoint.size")
                    .with_unit("By")
                    .with_boundaries(vec![1e3, 1e4, 1e5, 1e6, 1e7, 1e8])
                    .with_description("Bytes of changed state one partition checkpoint wrote")
                    .build(),
                watermark: meter
                    .i64_gauge("spate.watermark")
                    .with_unit("ms")
                    .with_description("The job's event-time watermark, epoch milliseconds")
                    .build(),
                watermark_lag: meter
                    .f64_gauge("spate.watermark.lag")
                    .with_unit("s")
                    .with_description("Wall-clock time minus the watermark")
                    .build(),
                state_keys: meter
                    .u64_gauge("spate.state.keys")
                    .with_description("Keys holding state, per key partition")
                    .build(),
                state_bytes: meter
                    .u64_gauge("spate.state.size")
                    .with_unit("By")
                    .with_description("Bytes of state stored in sled as of the last checkpoint, per key partition")
                    .build(),
                consumer_lag: meter
                    .u64_gauge("spate.consumer.lag")
                    .with_description("Kafka source: records in the topic partition not yet read, at the last epoch cut")
                    .build(),
                rebalances: meter
                    .u64_counter("spate.rebalances")
                    .with_description("Consumer-group rebalances that assigned partitions to this instance (kind=assigned) or took them away (kind=revoked)")
                    .build(),
                restores: meter
                    .u64_counter("spate.restores")
                    .with_description("Partitions whose state was rebuilt from the changelog (source=changelog) or found current in the local state directory (source=local)")
                    .build(),
                restore_seconds: meter
                    .f64_histogram("spate.restore.duration")
                    .with_unit("s")
                    .with_boundaries(vec![0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0])
                    .with_description("Time to restore one partition's state at a job or rebalance start")
                    .build(),
                source_pauses: meter
                    .u64_counter("spate.source.pauses")
                    .with_description("Times a Kafka source stopped reading a partition because its key partition had as many batches queued as it may (resumed once it handles one)")
                    .build(),
                state_expired: meter
                    .u64_counter("spate.state.expired")
                    .with_description("Keys whose state the state TTL dropped, not touched for the TTL")
                    .build(),
                _server: server,
                _provider: provider,
            }),
        };
        metrics.start_counters_at_zero();
        Ok(metrics)
    }

    /// Adds 0 to every job-wide counter, so each is exported from the start (a dashboard's
    /// rate over a counter that appears only with its first event shows nothing until then).
    fn start_counters_at_zero(&self) {
        let i = &self.inner;
        let attrs = std::slice::from_ref(&i.pipeline);
        for counter in [
            &i.records_in,
            &i.records_out,
            &i.late,
            &i.dead_letters,
            &i.state_expired,
        ] {
            counter.add(0, attrs);
        }
    }

    /// Records a committed epoch.
    pub fn epoch_committed(
        &self,
        records: u64,
        outputs: u64,
        late: u64,
        dead_letters: u64,
        epoch_ms: f64,
        watermark: Millis,
    ) {
        let i = &self.inner;
        let attrs = std::slice::from_ref(&i.pipeline);
        i.records_in.add(records, attrs);
        i.records_out.add(outputs, attrs);
        i.late.add(late, attrs);
        i.dead_letters.add(dead_letters, attrs);
        i.epoch_seconds.record(epoch_ms / 1e3, attrs);
        if watermark != BEFORE_TIME && watermark != END_OF_TIME {
            i.watermark.record(watermark, attrs);
            i.watermark_lag
                .record((now_ms() - watermark) as f64 / 1e3, attrs);
        }
    }

    /// Records one partition checkpoint.
    pub fn checkpoint(&self, millis: f64, bytes: u64) {
        let i = &self.inner;
        let attrs = std::slice::from_ref(&i.pipeline);
        i.checkpoint_seconds.record(millis / 1e3, attrs);
        i.checkpoint_bytes.record(bytes, attrs);
    }

    /// Records a partition's number of keys and its stored state size.
    pub fn state(&self, partition: u32, keys: u64, bytes: u64) {
        let i = &self.inner;
        let attrs = [
            i.pipeline.clone(),
            KeyValue::new("partition", i64::from(partition)),
        ];
        i.state_keys.record(keys, &attrs);
        i.state_bytes.record(bytes, &attrs);
    }

    /// Records each Kafka source partition's lag (records not yet read), index = partition.
    pub fn consumer_lag(&self, lag: &[(u32, u64)]) {
        let i = &self.inner;
        for &(p, records) in lag {
            i.consumer_lag.record(
                records,
                &[i.pipeline.clone(), KeyValue::new("partition", p as i64)],
            );
        }
    }

    /// Counts a rebalance of `kind` (`assigned` or `revoked`).
    pub fn rebalance(&self, kind: &'static str) {
        let i = &self.inner;
        i.rebalances
            .add(1, &[i.pipeline.clone(), KeyValue::new("kind", kind)]);
    }

    /// Records one partition's restore: from the changelog or the local copy, and how long.
    pub fn restore(&self, from_changelog: bool, seconds: f64) {
        let i = &self.inner;
        let source = KeyValue::new("source", if from_changelog { "changelog" } else { "local" });
        let attrs = [i.pipeline.clone(), source];
        i.restores.add(1, &attrs);
        i.restore_seconds.record(seconds, &attrs);
    }

    /// Counts a pause of source partition `partition` (see `runtime::source`).
    pub fn source_paused(&self, partition: u32) {
        let i = &self.inner;
        i.source_pauses.add(
            1,
            &[
                i.pipeline.clone(),
                KeyValue::new("partition", i64::from(partition)),
            ],
        );
    }

    /// Counts keys whose state expired under the state TTL in a committed epoch.
    pub fn state_expired(&self, keys: u64) {
        let i = &self.inner;
        i.state_expired.add(keys, std::slice::from_ref(&i.pipeline));
    }

    /// Counts a partition restart.
    pub fn restart(&self, partition: u32) {
        let i = &self.inner;
        i.restarts.add(
            1,
            &[
                i.pipeline.clone(),
                KeyValue::new("partition", i64::from(partition)),
            ],
        );
    }
}
