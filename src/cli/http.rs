//! The HTTP client of the commands that ask a running job at its metrics address (`spate
//! status`, `spate state … --addr`): one `GET` or `POST`, on hyper, with a timeout.

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::Method;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;

/// How long a command waits for the job's answer to a `GET`.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How long `spate state erase --addr` waits: the job answers within 60 s (202 when the
/// erasure's epoch is not committed by then).
const POST_TIMEOUT: Duration = Duration::from_secs(75);

/// `GET path` at `addr` (`HOST:PORT`): the status code and the body, or why no job answered.
pub(super) fn get(addr: &str, path: &str) -> Result<(u16, Bytes), String> {
    call(Method::GET, addr, path, TIMEOUT)
}

/// `POST path` (no body) at `addr`, as [`get`].
pub(super) fn post(addr: &str, path: &str) -> Result<(u16, Bytes), String> {
    call(Method::POST, addr, path, POST_TIMEOUT)
}

/// `method path` at `addr`, answered within `timeout`.
fn call(method: Method, addr: &str, path: &str, timeout: Duration) -> Result<(u16, Bytes), String> {
    let resolved =
        super::resolve(addr).map_err(|why| format!("cannot resolve --addr {addr}: {why}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start an HTTP client: {e}"))?;
    runtime.block_on(async {
        tokio::time::timeout(timeout, request(method, resolved, path))
            .await
            .map_err(|_| format!("no answer within {} s", timeout.as_secs()))?
    })
}

/// One request on a connection of its own.
async fn request(method: Method, addr: SocketAddr, path: &str) -> Result<(u16, Bytes), String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let code = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((code, body))
}
