//! An OTLP/HTTP trace collector for tests, on a free loopback port: it decodes every `POST
//! /v1/traces` body as the protocol's `ExportTraceServiceRequest` (protobuf, with the
//! OpenTelemetry project's own message types) and keeps the spans; stopped when dropped.

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
pub use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// A running collector.
pub struct Collector {
    /// Its base URL, `http://127.0.0.1:PORT` (what `--otlp-endpoint` takes).
    pub url: String,
    spans: Arc<Mutex<Vec<Span>>>,
    stop: Option<oneshot::Sender<()>>,
}

impl Collector {
    /// Starts a collector on a free loopback port.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let kept = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            post(move |body: Bytes| async move {
                let request = ExportTraceServiceRequest::decode(body).expect("an OTLP request");
                let spans = (request.resource_spans.into_iter())
                    .flat_map(|r| r.scope_spans)
                    .flat_map(|s| s.spans);
                kept.lock().unwrap().extend(spans);
                // An empty ExportTraceServiceResponse.
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
        });
        Collector {
            url,
            spans,
            stop: Some(stop),
        }
    }

    /// The spans received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
