//! SIGINT and SIGTERM: a request to finish the current epoch, checkpoint and stop.

#[cfg(unix)]
pub(super) async fn wait_for_stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
pub(super) async fn wait_for_stop_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
