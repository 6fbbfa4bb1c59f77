//! The accept loop: hyper's HTTP/1 server with a timer (header-read timeout), a cap on
//! connections, and graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Limits on connections, applied by [`Application::run_until`].
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnectionLimits {
    /// Time allowed for a request head (or idle time between requests).
    pub(super) header_timeout: Duration,
    /// Connections served at once.
    pub(super) max_connections: usize,
}

/// The accept loop: each connection is served on its own task by hyper's HTTP/1 server
/// with the header-read timeout, holding one of `max_connections` permits.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let graceful = GracefulShutdown::new();
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut at_capacity = false;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors, most likely: wait for some to be freed.
                tracing::error!(error = %e, "could not accept a connection");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if !at_capacity {
                tracing::warn!(
                    limit = limits.max_connections,
                    "connection limit reached: refusing new connections"
                );
            }
            at_capacity = true;
            refuse_connection(&stream);
            continue;
        };
        at_capacity = false;
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(remote));
            router.clone().oneshot(request)
        });
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Errors that concern one connection only, not the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Answer a connection beyond the limit with 503 `too_many_connections` (if its send
/// buffer takes it at once; nothing waits for the client) and close it.
fn refuse_connection(stream: &TcpStream) {
    const BODY: &str = r#"{"error":"the server has too many connections; retry shortly","code":"too_many_connections"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\ncache-control: no-store\r\n\
         connection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = stream.try_write(response.as_bytes());
}
