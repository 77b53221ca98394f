//! The HTTP endpoint at `--metrics-addr`: `GET /` (the status page, `page.html`: live charts
//! from the endpoints below, no internet needed), `GET /api/describe` (the pipeline's topology),
//! `GET /metrics` (Prometheus text), `GET /health`
//! (200 `ok`, or 503 with the reason) and `GET /api/progress[?last=N]` (the job's last epochs
//! as JSON, see [`ProgressReply`]), `GET /state/{key}` (the key's state in the running job, as
//! `spate state get` prints it), `GET /api/state` (what each partition holds, see
//! [`StateReply`]) and `POST /state/erase?key=K` (erases the key's state at the next epoch,
//! answering with the [`Erasure`](crate::state::Erasure) once it is committed), served by axum on a tokio runtime of its own thread, so scrapes run concurrently and a slow
//! or idle client never holds up another, and the job's actors never wait for a scrape.

use super::lookup::{EraseRefused, LiveState};
use super::status::{EpochProgress, Health, JobStatus, KEPT_EPOCHS};
use crate::{Error, Result};
use axum::extract::Path;
use axum::extract::Query;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use prometheus::{Encoder, TextEncoder};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The body of `GET /api/progress`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgressReply {
    /// The pipeline the job runs.
    pub pipeline: String,
    /// `healthy` or `unhealthy`.
    pub health: String,
    /// Why the job is unhealthy (`null` when healthy).
    pub reason: Option<String>,
    /// The last committed epochs, oldest first.
    pub epochs: Vec<EpochProgress>,
}

/// The query of `POST /state/erase`.
#[derive(Debug, Deserialize)]
struct EraseQuery {
    /// The key, as for `GET /state/{key}`.
    key: String,
}

/// The query of `GET /api/progress`.
#[derive(Debug, Deserialize)]
struct ProgressQuery {
    /// How many epochs (default and most: all kept, [`KEPT_EPOCHS`]).
    last: Option<usize>,
}

/// A running endpoint; dropping it stops the server (its thread ends once open connections
/// close; the job does not wait for them).
pub(super) struct Server {
    stop: Option<oneshot::Sender<()>>,
}

impl Server {
    /// Listens on `addr` (the error names `--metrics-addr` when it cannot) and serves
    /// `registry`, and `pipeline`'s `status`, there.
    pub(super) fn start(
        addr: SocketAddr,
        registry: prometheus::Registry,
        pipeline: &str,
        (status, live_state): (Arc<JobStatus>, Arc<LiveState>),
    ) -> Result<Self> {
        let listener = std::net::TcpListener::bind(addr)
            .and_then(|l| l.set_nonblocking(true).map(|_| l))
            .map_err(|e| {
                Error::config(
                    "--metrics-addr",
                    addr,
                    format!(
                        "cannot listen there ({e}); pick a free address or pass --metrics-addr off"
                    ),
                )
            })?;
        let (pipeline, health_status) = (pipeline.to_string(), status.clone());
        let describe_status = status.clone();
        let (state_of_partitions, state_pipeline) = (live_state.clone(), pipeline.clone());
        let (erasing, erase_named) = (live_state.clone(), live_state.clone());
        let app = Router::new()
            .route("/", get(|| async { axum::response::Html(PAGE) }))
            .route(
                "/api/describe",
                get(move || async move { describe_status.description() }),
            )
            .route("/metrics", get(move || metrics(registry.clone())))
            .route("/health", get(move || health(health_status.clone())))
            .route(
                "/api/progress",
                get(move |query| progress(status.clone(), pipeline.clone(), query)),
            )
            .route(
                "/api/state",
                get(move || partitions(state_of_partitions.clone(), state_pipeline.clone())),
            )
            .route(
                "/state/erase",
                post(move |query| erase(erasing.clone(), query)).get(move || {
                    key_state(erase_named.clone(), Path("erase".to_string())) // a key named so
                }),
            )
            .route(
                "/state/{key}",
                get(move |key| key_state(live_state.clone(), key)),
            )
            .fallback(|| async {
                (
                    StatusCode::NOT_FOUND,
                    "try GET /, GET /metrics, GET /health, GET /api/progress, GET /api/describe, GET /state/KEY or POST /state/erase?key=KEY\n",
                )
            });
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("spate-metrics".into())
            .spawn(move || serve(listener, app, stopped))
            .map_err(Error::thread("metrics"))?;
        tracing::info!("metrics at http://{addr}/metrics");
        Ok(Server { stop: Some(stop) })
    }
}

/// Runs the server until `stopped` fires.
fn serve(listener: std::net::TcpListener, app: Router, stopped: oneshot::Receiver<()>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return tracing::error!("the metrics endpoint cannot start: {e}"),
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(e) => return tracing::error!("the metrics endpoint cannot listen: {e}"),
        };
        let shutdown = async {
            let _ = stopped.await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("the metrics endpoint stopped: {e}");
        }
    });
}

/// The metrics text.
async fn metrics(registry: prometheus::Registry) -> impl IntoResponse {
    let mut body = Vec::new();
    match TextEncoder::new().encode(&registry.gather(), &mut body) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            body,
        ),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            format!("cannot encode the metrics: {e}\n").into_bytes(),
        ),
    }
}

/// 200 `ok`, or 503 `unhealthy: REASON`.
async fn health(status: Arc<JobStatus>) -> impl IntoResponse {
    match status.health() {
        Health::Healthy => (StatusCode::OK, "ok\n".to_string()),
        Health::Unhealthy(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {why}\n"),
        ),
    }
}

/// The job's last epochs and health as JSON.
async fn progress(
    status: Arc<JobStatus>,
    pipeline: String,
    Query(query): Query<ProgressQuery>,
) -> Json<ProgressReply> {
    let (health, reason) = match status.health() {
        Health::Healthy => ("healthy", None),
        Health::Unhealthy(why) => ("unhealthy", Some(why)),
    };
    Json(ProgressReply {
        pipeline,
        health: health.into(),
        reason,
        epochs: status.recent(query.last.unwrap_or(KEPT_EPOCHS)),
    })
}

/// The status page.
const PAGE: &str = include_str!("page.html");

/// How long `GET /state/{key}` waits for the partitions (busy ones answer between batches).
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The key's state as JSON (200), or 404 when it has none, 400 when it cannot be a key of the
/// pipeline, 503 when no job runs or the partitions do not answer in time.
async fn key_state(
    live_state: Arc<LiveState>,
    Path(key): Path<String>,
) -> axum::response::Response {
    let Some(access) = live_state.get() else {
        return unavailable("no job is running".into());
    };
    match tokio::time::timeout(LOOKUP_TIMEOUT, (access.key)(key.clone())).await {
        Ok(Ok(Some(report))) => Json(report).into_response(),
        Ok(Ok(None)) => {
            (StatusCode::NOT_FOUND, format!("key {key} has no state\n")).into_response()
        }
        Ok(Err(why)) => (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response(),
        Err(_) => unavailable(format!(
            "the partitions did not answer within {} s",
            LOOKUP_TIMEOUT.as_secs()
        )),
    }
}

/// How long `POST /state/erase` waits for the erasure's epoch to be committed before it
/// answers 202 (queued; the erasure still happens).
const ERASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Erases the key's state: 200 with the erasure as JSON once its epoch is committed, 404 when
/// no partition held state for the key, 400 when it cannot be a key of the pipeline, 202 when
/// the epoch takes longer than [`ERASE_TIMEOUT`], 503 when no job runs or it ended first.
async fn erase(
    live_state: Arc<LiveState>,
    Query(EraseQuery { key }): Query<EraseQuery>,
) -> axum::response::Response {
    let Some(access) = live_state.get() else {
        return unavailable("no job is running".into());
    };
    match tokio::time::timeout(ERASE_TIMEOUT, (access.erase)(key.clone())).await {
        Ok(Ok(Some(erasure))) => Json(erasure).into_response(),
        Ok(Ok(None)) => {
            (StatusCode::NOT_FOUND, format!("key {key} has no state\n")).into_response()
        }
        Ok(Err(EraseRefused::NotAKey(why))) => {
            (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response()
        }
        Ok(Err(EraseRefused::JobEnded)) => {
            unavailable("the job ended before the erasure's epoch was committed".into())
        }
        Err(_) => (
            StatusCode::ACCEPTED,
            format!(
                "the erasure of key {key} is queued, its epoch not committed within {} s; GET /state/KEY shows when it is done\n",
                ERASE_TIMEOUT.as_secs()
            ),
        )
            .into_response(),
    }
}

/// 503 with `why`.
fn unavailable(why: String) -> axum::response::Response {
    (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response()
}

/// The body of `GET /api/state`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StateReply {
    /// The pipeline the job runs.
    pub pipeline: String,
    /// What each of the job's partitions holds now (bytes: as of its last checkpoint).
    pub partitions: Vec<crate::state::PartitionSummary>,
}

/// What each partition of the running job holds, or 503 when no job runs or the partitions do
/// not answer in time.
async fn partitions(live_state: Arc<LiveState>, pipeline: String) -> axum::response::Response {
    let Some(access) = live_state.get() else {
        return unavailable("no job is running".into());
    };
    match tokio::time::timeout(LOOKUP_TIMEOUT, (access.partitions)()).await {
        Ok(partitions) => Json(StateReply {
            pipeline,
            partitions,
        })
        .into_response(),
        Err(_) => unavailable(format!(
            "the partitions did not answer within {} s",
            LOOKUP_TIMEOUT.as_secs()
        )),
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
