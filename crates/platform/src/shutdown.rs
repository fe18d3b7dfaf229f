//! Shutdown as a protocol: the first SIGTERM/SIGINT starts a drain (servers report
//! NOT_SERVING, stop taking work and finish what is in flight within a deadline); a second
//! signal exits at once.
use tokio_util::sync::CancellationToken;

/// Returns a token cancelled at the first signal; a second signal exits the process.
pub fn install_signal_handlers() -> CancellationToken {
    let token = CancellationToken::new();
    let first = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::warn!("shutdown requested: draining (send the signal again to exit at once)");
        first.cancel();
        wait_for_signal().await;
        tracing::error!("second shutdown signal: exiting now");
        std::process::exit(130);
    });
    token
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
