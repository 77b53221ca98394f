//! `fraud-score`: every payment scored with the probability that it is fraud, by one FTRL
//! logistic regression the whole pipeline shares and learns online from payments' outcomes
//! (prequential evaluation: no score has seen its own outcome).
//!
//! Inputs `transactions` and `labels` (`{"tx_id","fraud","event_ms"}`: a payment's outcome,
//! known minutes to hours after it, as chargebacks are), each with 10 s of allowed disorder.
//! Output, one per payment: `{"tx_id","user_id","event_ms","probability","model_version"}`.
//!
//! Two keyed stages:
//!
//! 1. **By user** ([`UserFeatures`]): a payment's features from its user's recent activity,
//!    before the payment ([`FEATURES`]: its amount; the count and sum of the user's payments in
//!    the 5 minutes and the hour before it; the time since the user's previous payment; whether
//!    the merchant is new among the user's last [`MERCHANTS_KEPT`]). Outcomes pass through.
//! 2. **By payment** ([`Prequential`]): a payment waits for the model of its time (a model
//!    timer), is scored with it and emitted; its features stay in state until its outcome
//!    arrives (at most [`OUTCOME_TTL`] of event time), and the pair becomes a training example
//!    at the outcome's time.
//!
//! The model ([`FraudModel`]: features scaled by their running mean and variance, then FTRL)
//! learns once per micro-batch of outcome time (`--param micro_batch`, default 1 minute); a
//! payment at time `t` is scored by the model that learned every outcome before `t`'s
//! micro-batch began. Scores therefore depend only on the input (see [`spate::learning`]):
//! the same input gives the same scores on any number of workers and after any restart.
//! `probability` is 0.5 until the model learned its first micro-batch; `model_version` counts
//! the micro-batches it learned.

use crate::events::Transaction;
use serde::{Deserialize, Serialize};
use spate::cli::{ParamDecl, Params};
use spate::join::Either;
use spate::learning::{batch_start, SharedModel};
use spate::operator::{score_bucket, KeyedContext, KeyedOperator, MetricDecl, Timer};
use spate::prelude::*;
use spate::time::StateTtl;
use spate_models::{Example, FtrlClassifier, OnlineModel, OnlineScaler};
use std::collections::VecDeque;
use std::time::Duration;

/// Features per payment.
pub const FEATURES: usize = 7;
/// Distinct merchants remembered per user (for "the merchant is new").
pub const MERCHANTS_KEPT: usize = 32;
/// How long a payment waits for its outcome, and an outcome for its payment.
pub const OUTCOME_TTL: Duration = Duration::from_secs(12 * 3600);
/// FTRL's learning rate, by default.
pub const ALPHA: f64 = 2.0;
const MINUTE: Millis = 60_000;
const HOUR: Millis = 60 * MINUTE;
/// The counters of fraud payments' scores, by twentieth of the probability (for the AUC).
const FRAUD_SCORES: [&str; 20] = [
    "fraud_p00",
    "fraud_p01",
    "fraud_p02",
    "fraud_p03",
    "fraud_p04",
    "fraud_p05",
    "fraud_p06",
    "fraud_p07",
    "fraud_p08",
    "fraud_p09",
    "fraud_p10",
    "fraud_p11",
    "fraud_p12",
    "fraud_p13",
    "fraud_p14",
    "fraud_p15",
    "fraud_p16",
    "fraud_p17",
    "fraud_p18",
    "fraud_p19",
];
/// The counters of legitimate payments' scores, likewise.
const LEGITIMATE_SCORES: [&str; 20] = [
    "legitimate_p00",
    "legitimate_p01",
    "legitimate_p02",
    "legitimate_p03",
    "legitimate_p04",
    "legitimate_p05",
    "legitimate_p06",
    "legitimate_p07",
    "legitimate_p08",
    "legitimate_p09",
    "legitimate_p10",
    "legitimate_p11",
    "legitimate_p12",
    "legitimate_p13",
    "legitimate_p14",
    "legitimate_p15",
    "legitimate_p16",
    "legitimate_p17",
    "legitimate_p18",
    "legitimate_p19",
];
/// "Time since the previous payment" of a user's first payment.
const NO_PREVIOUS_SECONDS: f64 = 86_400.0;

/// A payment's outcome: the `labels` input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The payment.
    pub tx_id: Id,
    /// Whether it was fraud.
    pub fraud: bool,
    /// When the outcome became known, epoch milliseconds.
    pub event_ms: Millis,
}

/// A payment with its features, on its way to be scored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    /// The payment.
    pub tx_id: Id,
    /// Its user.
    pub user_id: Id,
    /// Its time, epoch milliseconds.
    pub event_ms: Millis,
    /// Its raw features (see [`FEATURES`]).
    pub features: [f64; FEATURES],
}

/// What the first stage hands the second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Step {
    /// A payment to score.
    Payment(Payment),
    /// An outcome to learn from.
    Outcome(Outcome),
}

impl Step {
    /// The payment both carry.
    pub fn tx_id(&self) -> &Id {
        match self {
            Step::Payment(p) => &p.tx_id,
            Step::Outcome(o) => &o.tx_id,
        }
    }

    /// Its event time.
    pub fn event_ms(&self) -> Millis {
        match self {
            Step::Payment(p) => p.event_ms,
            Step::Outcome(o) => o.event_ms,
        }
    }
}

/// One scored payment: the pipeline's output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FraudScore {
    /// The payment.
    pub tx_id: Id,
    /// Its user.
    pub user_id: Id,
    /// Its time, epoch milliseconds.
    pub event_ms: Millis,
    /// The probability that it is fraud.
    pub probability: f64,
    /// The model's version: micro-batches of outcomes it learned.
    pub model_version: u64,
}

/// The shared model: raw features scaled by their running mean and variance, then FTRL.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FraudModel {
    scaler: OnlineScaler,
    ftrl: FtrlClassifier,
}

impl FraudModel {
    /// An untrained model with learning rate `alpha`.
    pub fn new(alpha: f64) -> Self {
        FraudModel {
            scaler: OnlineScaler::new(FEATURES),
            ftrl: FtrlClassifier::new(FEATURES, alpha, 11),
        }
    }

    /// The probability that a payment with these raw features is fraud (0.5 untrained).
    pub fn probability(&self, features: &[f64; FEATURES]) -> f64 {
        let mut scaled = [0.0; FEATURES];
        self.scaler.scale(features, &mut scaled);
        self.ftrl.score(&scaled).unwrap_or(0.5)
    }
}

impl SharedModel for FraudModel {
    type Example = Example<bool>;

    /// The scaler learns the batch's raw features, then FTRL learns them scaled.
    fn learn(&mut self, examples: &[Example<bool>]) -> Result<(), String> {
        let rows: Vec<&[f64]> = examples.iter().map(|e| e.features.as_slice()).collect();
        self.scaler.learn(&rows).map_err(|e| e.to_string())?;
        let scaled: Vec<Example<bool>> = (examples.iter())
            .map(|e| Example {
                features: self.scaler.transform(&e.features),
                label: e.label,
            })
            .collect();
        self.ftrl.learn(&scaled).map_err(|e| e.to_string())
    }
}

/// A user's recent activity.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Activity {
    /// The user's payments of the last hour (of the newest one's time): time and cents.
    recent: VecDeque<(Millis, i64)>,
    /// The time of the user's previous payment.
    last_ms: Option<Millis>,
    /// The user's last distinct merchants, newest last, by their stable hash (a comparison
    /// of two integers instead of two strings; a collision among 32 merchants of one user is
    /// a chance of one in 10^16).
    merchants: VecDeque<u64>,
}

impl Activity {
    /// The features of `tx` given the activity before it.
    pub fn features(&self, tx: &Transaction) -> [f64; FEATURES] {
        let t = tx.event_ms;
        // Count and sum of the payments in the 5 minutes and the hour up to `t`, in one pass.
        let (mut count_5m, mut sum_5m, mut count_1h, mut sum_1h) = (0.0, 0.0, 0.0, 0.0);
        for &(at, cents) in self.recent.iter().filter(|(at, _)| *at <= t) {
            if at >= t - HOUR {
                (count_1h, sum_1h) = (count_1h + 1.0, sum_1h + cents as f64);
            }
            if at >= t - 5 * MINUTE {
                (count_5m, sum_5m) = (count_5m + 1.0, sum_5m + cents as f64);
            }
        }
        let since = self
            .last_ms
            .map_or(NO_PREVIOUS_SECONDS, |last| (t - last).max(0) as f64 / 1e3);
        let dollars = |cents: f64| (1.0 + cents / 100.0).ln();
        [
            dollars(tx.amount_cents as f64),
            count_5m,
            dollars(sum_5m),
            count_1h,
            dollars(sum_1h),
            (1.0 + since).ln(),
            f64::from(!self.merchants.contains(&tx.merchant_id.partition_hash())),
        ]
    }

    /// Adds `tx` to the activity.
    pub fn record(&mut self, tx: &Transaction) {
        self.recent.push_back((tx.event_ms, tx.amount_cents));
        // The newest payment ever is the newest of the last hour's.
        let newest = self.last_ms.map_or(tx.event_ms, |l| l.max(tx.event_ms));
        self.last_ms = Some(newest);
        self.recent.retain(|(at, _)| *at > newest - HOUR);
        let merchant = tx.merchant_id.partition_hash();
        if let Some(i) = self.merchants.iter().position(|m| *m == merchant) {
            self.merchants.remove(i);
        }
        self.merchants.push_back(merchant);
        if self.merchants.len() > MERCHANTS_KEPT {
            self.merchants.pop_front();
        }
    }
}

/// Stage 1, keyed by user (payments) or by payment (outcomes, which pass through).
pub struct UserFeatures;

impl KeyedOperator for UserFeatures {
    type Key = Id;
    type Event = Either<Transaction, Outcome>;
    type State = Activity;
    type Output = Step;

    fn on_event(&self, event: &Self::Event, ctx: &mut KeyedContext<'_, Id, Activity, Step>) {
        self.on_event_owned(event.clone(), ctx);
    }

    /// A payment's ids and an outcome move on into the second stage's input, uncloned.
    fn on_event_owned(&self, event: Self::Event, ctx: &mut KeyedContext<'_, Id, Activity, Step>) {
        match event {
            Either::Left(tx) => {
                let activity = ctx.state();
                let features = activity.features(&tx);
                activity.record(&tx);
                ctx.emit(Step::Payment(Payment {
                    tx_id: tx.tx_id,
                    user_id: tx.user_id,
                    event_ms: tx.event_ms,
                    features,
                }));
            }
            Either::Right(outcome) => {
                ctx.emit(Step::Outcome(outcome));
                ctx.clear_state(); // keyed by payment here: nothing to keep
            }
        }
    }

    fn describe(&self) -> String {
        "features of each payment from its user's last hour; outcomes pass through".into()
    }
}

/// A payment waiting for its score or its outcome, or an outcome waiting for its payment.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Pending {
    payment: Option<Payment>,
    /// Whether it was fraud, and when that became known.
    outcome: Option<(bool, Millis)>,
    /// The score it got.
    probability: Option<f64>,
}

/// Stage 2, keyed by payment: scores each payment with the model of its time, and teaches the
/// model each payment's features with its outcome.
pub struct Prequential {
    /// The length of the model's micro-batch: a payment waits for the model of its
    /// micro-batch's start, which is the model of its time (one timer slot a micro-batch
    /// instead of one a millisecond).
    pub micro_batch: Millis,
}

type Ctx<'a> = KeyedContext<'a, Id, Pending, FraudScore>;

impl Prequential {
    /// Scores the key's payment with the model of its time (`None` while it is not known).
    fn score(ctx: &mut Ctx<'_>) -> Option<()> {
        let payment = ctx.state().payment.clone()?;
        let model = ctx.model::<FraudModel>()?;
        let (probability, version) = (model.model.probability(&payment.features), model.version);
        let score = FraudScore {
            tx_id: payment.tx_id,
            user_id: payment.user_id,
            event_ms: payment.event_ms,
            probability,
            model_version: version,
        };
        ctx.emit(score);
        ctx.state().probability = Some(probability);
        Some(())
    }

    /// Learns from the payment and its outcome once both are in.
    fn learn(ctx: &mut Ctx<'_>) {
        let pending = ctx.state();
        if let (Some(payment), Some((fraud, at))) = (&pending.payment, pending.outcome) {
            let example = Example {
                features: payment.features.to_vec(),
                label: fraud,
            };
            ctx.learn(at, &example);
        }
    }

    /// Evaluates the score against the outcome once both are in, and forgets the payment.
    fn evaluate(ctx: &mut Ctx<'_>) {
        let pending = ctx.state();
        let (Some(p), Some((fraud, _))) = (pending.probability, pending.outcome) else {
            return;
        };
        let p_true = if fraud { p } else { 1.0 - p };
        ctx.count("evaluated", 1.0);
        ctx.count("log_loss_sum", -p_true.clamp(1e-15, 1.0).ln());
        ctx.count(if fraud { "fraud" } else { "legitimate" }, 1.0);
        let scores = if fraud {
            &FRAUD_SCORES
        } else {
            &LEGITIMATE_SCORES
        };
        ctx.count(scores[score_bucket(p, scores.len())], 1.0);
        if (p >= 0.5) == fraud {
            ctx.count("correct", 1.0);
        }
        ctx.clear_state();
    }
}

impl KeyedOperator for Prequential {
    type Key = Id;
    type Event = Step;
    type State = Pending;
    type Output = FraudScore;

    fn on_event(&self, step: &Step, ctx: &mut Ctx<'_>) {
        self.on_event_owned(step.clone(), ctx);
    }

    /// A payment moves into the state that keeps it until its outcome, uncloned.
    fn on_event_owned(&self, step: Step, ctx: &mut Ctx<'_>) {
        match step {
            Step::Payment(payment) if ctx.state().payment.is_none() => {
                let micro_batch = batch_start(payment.event_ms, self.micro_batch);
                ctx.state().payment = Some(payment);
                ctx.register_model_timer(micro_batch);
                Self::learn(ctx);
            }
            Step::Outcome(o) if ctx.state().outcome.is_none() => {
                ctx.state().outcome = Some((o.fraud, o.event_ms));
                Self::learn(ctx);
                Self::evaluate(ctx);
            }
            _ => ctx.count("duplicates", 1.0),
        }
    }

    fn on_timer(&self, timer: Timer, ctx: &mut Ctx<'_>) {
        if Self::score(ctx).is_none() {
            // Not known yet (cannot happen: the timer fires when it is); wait for the next.
            ctx.register_model_timer(timer.time);
            return;
        }
        Self::evaluate(ctx);
    }

    fn describe(&self) -> String {
        "scores each payment with the shared model of its time; learns it with its outcome".into()
    }

    fn metrics(&self) -> Vec<MetricDecl> {
        vec![
            MetricDecl::Counter {
                name: "evaluated",
                help: "payments scored whose outcome is known",
            },
            MetricDecl::Counter {
                name: "fraud",
                help: "evaluated payments that were fraud",
            },
            MetricDecl::Counter {
                name: "legitimate",
                help: "evaluated payments that were not",
            },
            MetricDecl::Counter {
                name: "log_loss_sum",
                help: "the evaluated payments' summed log-loss",
            },
            MetricDecl::Counter {
                name: "correct",
                help: "evaluated payments on the right side of 0.5",
            },
            MetricDecl::Counter {
                name: "duplicates",
                help: "payments or outcomes seen twice (ignored)",
            },
            MetricDecl::Ratio {
                name: "log_loss",
                help: "mean prequential log-loss",
                numerator: "log_loss_sum",
                denominator: "evaluated",
            },
            MetricDecl::Auc {
                name: "auc",
                help: "prequential area under the ROC curve (scores in twentieths)",
                positives: &FRAUD_SCORES,
                negatives: &LEGITIMATE_SCORES,
            },
            MetricDecl::Ratio {
                name: "accuracy",
                help: "prequential accuracy at 0.5",
                numerator: "correct",
                denominator: "evaluated",
            },
        ]
    }
}

/// The pipeline's parameters.
pub fn params() -> Vec<ParamDecl> {
    vec![
        ParamDecl::new(
            "micro_batch",
            "1m",
            "outcome time per model update (the model learns once per micro-batch)",
        ),
        ParamDecl::new("alpha", &ALPHA.to_string(), "FTRL's learning rate"),
    ]
}

/// The pipeline with `params`.
pub fn pipeline(params: &Params) -> spate::Result<impl spate::Runnable> {
    let micro_batch: Duration = params.get::<humantime::Duration>("micro_batch")?.into();
    let alpha: f64 = params.get("alpha")?;
    let delay = Duration::from_secs(10);
    let outcomes = Pipeline::<Outcome>::new("fraud-score", "")
        .input("labels")
        .event_time(|o| o.event_ms)
        .watermark_delay(delay)
        .key_by(|o| o.tx_id.clone());
    Ok(Pipeline::<Transaction>::new(
        "fraud-score",
        "the probability that each payment is fraud, by an FTRL model learned online from payments' outcomes",
    )
    .input("transactions")
    .event_time(|t| t.event_ms)
    .watermark_delay(delay)
    .key_by(|t| t.user_id.clone())
    .state_ttl(StateTtl::event_time(Duration::from_secs(24 * 3600)))
    .connect(outcomes, UserFeatures)
    .event_time(Step::event_ms)
    .key_by(|s| s.tx_id().clone())
    .state_ttl(StateTtl::event_time(OUTCOME_TTL))
    .process(Prequential {
        micro_batch: micro_batch.as_millis().max(1) as Millis,
    })
    .shared_model(&FraudModel::new(alpha), micro_batch))
}
