//! The pipelines that ship with spate, written as Rust actor modules over the engine's API, and
//! their event types. `registry()` lists them for the `spate` binary.

#![deny(missing_docs)]

pub mod events;
pub mod pipelines;

use spate::Registry;

/// Every built-in pipeline.
pub fn registry() -> Registry {
    let mut registry = Registry::new();
    registry
        .register(pipelines::tx_windows::pipeline())
        .register(pipelines::fraud::pipeline())
        .register(pipelines::sessions::pipeline())
        .register(pipelines::tx_enriched::pipeline())
        .register(pipelines::enrich::pipeline())
        .register(pipelines::traffic::pipeline())
        .register(pipelines::iot::pipeline())
        .register(pipelines::failed_logins::pipeline())
        .register(pipelines::funnel::pipeline())
        .register(pipelines::nexmark::q0::pipeline())
        .register(pipelines::nexmark::q1::pipeline())
        .register(pipelines::nexmark::q2::pipeline())
        .register(pipelines::nexmark::q3::pipeline())
        .register(pipelines::nexmark::q4::pipeline())
        .register(pipelines::nexmark::q5::pipeline())
        .register(pipelines::nexmark::q7::pipeline())
        .register(pipelines::nexmark::q8::pipeline())
        .register(pipelines::nexmark::q9::pipeline())
        .register(pipelines::nexmark::q11::pipeline())
        .register(pipelines::nexmark::q12::pipeline())
        .register(pipelines::nexmark::q13::pipeline())
        .register(pipelines::nexmark::q14::pipeline())
        .register(pipelines::nexmark::q15::pipeline())
        .register(pipelines::nexmark::q16::pipeline())
        .register(pipelines::nexmark::q17::pipeline())
        .register(pipelines::nexmark::q18::pipeline())
        .register(pipelines::nexmark::q19::pipeline())
        .register(pipelines::nexmark::q20::pipeline())
        .register(pipelines::nexmark::q21::pipeline())
        .register(pipelines::nexmark::q22::pipeline())
        .register_with_params(
            pipelines::iot_anomaly::params(),
            pipelines::iot_anomaly::pipeline,
        )
        .register_with_params(
            pipelines::fraud_score::params(),
            pipelines::fraud_score::pipeline,
        );
    registry
}
