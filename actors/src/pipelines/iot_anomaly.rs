//! `iot-anomaly`: readings far from what is normal for their device. Per device the pipeline
//! keeps a rolling mean of each field (temperature, vibration, pressure) and an online model of
//! how readings deviate from it: the deviations' running mean and variance
//! ([`OnlineScaler`]) and a streaming k-means over the scaled deviations
//! ([`StreamingKMeans`], half-life 50 micro-batches). A reading's score is the distance of its
//! scaled deviation to the nearest centroid; above the threshold (`--param threshold`, default
//! [`THRESHOLD`]) it is an anomaly and is emitted:
//! `{"device_id","event_ms","score","temperature","vibration","pressure"}`.
//!
//! The model is keyed state (one per device): it learns once per micro-batch of normal
//! readings of its device (`--param batch`, default [`BATCH`]; anomalies are not learned, so a
//! burst of them does not become normal), is checkpointed like any state, and scores every
//! reading with the version learned from the micro-batches before it. What a device's readings
//! score therefore depends only on that device's readings in order: the same input gives the
//! same output on any number of workers and after any restart. A device's first readings
//! train its model and are not scored (one more than a batch).

use crate::events::SensorReading;
use serde::{Deserialize, Serialize};
use spate::cli::{ParamDecl, Params};
use spate::operator::{KeyedContext, KeyedOperator, MetricDecl};
use spate::prelude::*;
use spate_models::{Example, OnlineModel, OnlineScaler, StreamingKMeans};
use std::time::Duration;

/// A reading scoring above this is an anomaly, by default (distance in standard deviations of
/// the device's usual deviation from its rolling mean).
pub const THRESHOLD: f64 = 6.0;
/// Normal readings per model update, by default.
pub const BATCH: usize = 16;
/// Weight of a new reading in the rolling mean.
const SMOOTHING: f64 = 0.1;
/// Fields per reading.
const DIMS: usize = 3;

/// An anomalous reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anomaly {
    /// The device, as the input wrote it.
    pub device_id: Id,
    /// The reading's event time.
    pub event_ms: Millis,
    /// How far from normal it is.
    pub score: f64,
    /// The reading.
    pub temperature: f64,
    /// The reading.
    pub vibration: f64,
    /// The reading.
    pub pressure: f64,
}

/// One device's model of normal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceModel {
    /// Rolling mean of each field, once a reading was seen.
    mean: Option<[f64; DIMS]>,
    /// How the device's readings deviate from the rolling mean.
    scaler: OnlineScaler,
    /// Clusters of scaled deviations.
    clusters: StreamingKMeans,
    /// Deviations of the normal readings since the last update.
    batch: Vec<[f64; DIMS]>,
}

impl Default for DeviceModel {
    fn default() -> Self {
        DeviceModel {
            mean: None,
            scaler: OnlineScaler::new(DIMS),
            clusters: StreamingKMeans::new(2, DIMS, Some(50.0), 7),
            batch: Vec::new(),
        }
    }
}

impl DeviceModel {
    /// The reading's score (`None` while the model is untrained), learning from it when it
    /// is normal (scores `threshold` or less); and how many examples an update it completed
    /// learned (0: none).
    fn observe(&mut self, fields: [f64; DIMS], tuning: &Tuning) -> (Option<f64>, usize) {
        let Some(mean) = self.mean.as_mut() else {
            self.mean = Some(fields);
            return (None, 0);
        };
        let deviation: [f64; DIMS] = std::array::from_fn(|i| fields[i] - mean[i]);
        let mut scaled = [0.0; DIMS];
        self.scaler.scale(&deviation, &mut scaled);
        let score = self.clusters.score(&scaled);
        if score.is_some_and(|s| s > tuning.threshold) {
            return (score, 0);
        }
        for (m, x) in mean.iter_mut().zip(fields) {
            *m += SMOOTHING * (x - *m);
        }
        self.batch.push(deviation);
        if self.batch.len() < tuning.batch {
            return (score, 0);
        }
        (score, self.learn())
    }

    /// One micro-batch: the scaler learns the deviations, then the clusters learn them scaled.
    /// Returns how many.
    fn learn(&mut self) -> usize {
        let batch = std::mem::take(&mut self.batch);
        self.scaler
            .learn(&batch)
            .expect("deviations have DIMS fields");
        let scaled: Vec<Example<()>> = batch
            .iter()
            .map(|d| Example::unlabelled(self.scaler.transform(d)))
            .collect();
        self.clusters
            .learn(&scaled)
            .expect("scaled deviations have DIMS fields");
        scaled.len()
    }
}

/// What `--param` sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// Scores above it are anomalies.
    pub threshold: f64,
    /// Normal readings per model update.
    pub batch: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            threshold: THRESHOLD,
            batch: BATCH,
        }
    }
}

/// Scores every reading against its device's model.
pub struct AnomalyDetector(pub Tuning);

type Ctx<'a> = KeyedContext<'a, Id, DeviceModel, Anomaly>;

impl KeyedOperator for AnomalyDetector {
    type Key = Id;
    type Event = SensorReading;
    type State = DeviceModel;
    type Output = Anomaly;

    fn on_event(&self, r: &SensorReading, ctx: &mut Ctx<'_>) {
        let fields = [r.temperature, r.vibration, r.pressure];
        let (score, learned) = ctx.state().observe(fields, &self.0);
        if learned > 0 {
            ctx.count("model_updates", 1.0);
            ctx.count("model_examples", learned as f64);
        }
        if let Some(score) = score {
            ctx.count("scored", 1.0);
            ctx.count("score_sum", score);
        }
        if let Some(score) = score.filter(|s| *s > self.0.threshold) {
            ctx.count("alerts", 1.0);
            ctx.emit(Anomaly {
                device_id: r.device_id.clone(),
                event_ms: r.event_ms,
                score: (score * 1000.0).round() / 1000.0,
                temperature: r.temperature,
                vibration: r.vibration,
                pressure: r.pressure,
            });
        }
    }

    fn metrics(&self) -> Vec<MetricDecl> {
        let counter = |name, help| MetricDecl::Counter { name, help };
        let ratio = |name, help, numerator, denominator| MetricDecl::Ratio {
            name,
            help,
            numerator,
            denominator,
        };
        vec![
            counter(
                "model_updates",
                "updates of a device's model (one per micro-batch)",
            ),
            counter("model_examples", "normal readings the models learned"),
            counter("scored", "readings scored by a trained model"),
            counter("alerts", "readings scoring above the threshold"),
            counter("score_sum", "the scores' sum"),
            ratio(
                "examples_per_update",
                "readings per model update",
                "model_examples",
                "model_updates",
            ),
            ratio(
                "alert_rate",
                "share of scored readings that are anomalies",
                "alerts",
                "scored",
            ),
            ratio(
                "mean_score",
                "mean score of the scored readings",
                "score_sum",
                "scored",
            ),
        ]
    }

    fn describe(&self) -> String {
        format!(
            "per-device online model (rolling mean, learned scaling, streaming k-means updated every {} normal readings), anomalies scoring over {}",
            self.0.batch, self.0.threshold
        )
    }
}

/// The parameters `--param` sets.
pub fn params() -> Vec<ParamDecl> {
    vec![
        ParamDecl::new(
            "threshold",
            &THRESHOLD.to_string(),
            "a reading scoring above this is an anomaly (standard deviations from its device's normal)",
        ),
        ParamDecl::new(
            "batch",
            &BATCH.to_string(),
            "normal readings of a device per update of its model",
        ),
    ]
}

/// The pipeline with `params`.
pub fn pipeline(params: &Params) -> spate::Result<impl spate::Runnable> {
    let tuning = Tuning {
        threshold: params.get("threshold")?,
        batch: params.get::<usize>("batch")?.max(2),
    };
    Ok(Pipeline::<SensorReading>::new(
        "iot-anomaly",
        "readings far from their device's learned normal (online k-means per device)",
    )
    .input("sensors")
    .event_time(|r| r.event_ms)
    .watermark_delay(Duration::from_secs(10))
    .key_by(|r| r.device_id.clone())
    .process(AnomalyDetector(tuning)))
}
