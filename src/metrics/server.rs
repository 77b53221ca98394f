//! The HTTP endpoint at `--metrics-addr`: `GET /metrics` (Prometheus text) and `GET /health`,
//! served by axum on a tokio runtime of its own thread, so scrapes run concurrently and a slow
//! or idle client never holds up another, and the job's actors never wait for a scrape.

use crate::{Error, Result};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use prometheus::{Encoder, TextEncoder};
use std::net::SocketAddr;
use tokio::sync::oneshot;

/// A running endpoint; dropping it stops the server (its thread ends once open connections
/// close; the job does not wait for them).
pub(super) struct Server {
    stop: Option<oneshot::Sender<()>>,
}

impl Server {
    /// Listens on `addr` (the error names `--metrics-addr` when it cannot) and serves
    /// `registry` there.
    pub(super) fn start(addr: SocketAddr, registry: prometheus::Registry) -> Result<Self> {
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
        let app = Router::new()
            .route("/metrics", get(move || metrics(registry.clone())))
            .route("/health", get(|| async { "ok\n" }))
            .fallback(|| async { (StatusCode::NOT_FOUND, "try GET /metrics or GET /health\n") });
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("spate-metrics".into())
            .spawn(move || serve(listener, app, stopped))
            .map_err(|e| Error::Runtime(format!("cannot start the metrics thread: {e}")))?;
        tracing::info!("metrics at http://{addr}/metrics");
        Ok(Server { stop: Some(stop) })
    }
}

/// Runs the server until `stopped` fires.
fn serve(listener: std::net::TcpListener, app: Router, stopped: oneshot::Receiver<()>) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
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

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
