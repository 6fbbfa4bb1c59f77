//! Seeing what the server does: a request id on every request and response, a tracing
//! span per request (method, route template, request id, then status and latency), the
//! request metrics, and `GET /metrics`.
//!
//! Nothing from the request but its method, matched route template and (from a trusted
//! proxy) its `x-request-id` reaches a log field or a label: no path, query, header,
//! cookie or token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{MakeSpan, OnResponse, TraceLayer};
use tracing::Span;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorCode;
use super::forwarded::peer_is_trusted_proxy;
use super::{AppState, WebSettings};
use crate::telemetry::{Metrics, CONTENT_TYPE};

/// The request id header, read from trusted proxies and always sent back.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest inbound request id accepted.
const MAX_REQUEST_ID: usize = 128;

/// The route label of a request no route matched.
const UNMATCHED: &str = "unmatched";

/// Give the request an id: the inbound `x-request-id` when the connection comes from a
/// trusted proxy and the id is short and plain (letters, digits, `-_.:`), else a new
/// UUID v4. The id is put in the request (for the span) and in the response.
pub(super) async fn request_id(
    State(web): State<Arc<WebSettings>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let inbound = request
        .headers()
        .get(&REQUEST_ID)
        .filter(|_| peer_is_trusted_proxy(peer, web.trusted_proxies.as_ref()))
        .filter(|id| is_plain_id(id.as_bytes()))
        .cloned();
    let id = inbound.unwrap_or_else(|| {
        HeaderValue::from_str(&uuid::Uuid::new_v4().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
    });
    request.headers_mut().insert(REQUEST_ID, id.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

fn is_plain_id(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The route template of a request (`/admin/users/{id}`), never its path.
fn route_of<B>(request: &axum::http::Request<B>) -> String {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned()
}

/// Count the request by method, route template and status, time it, and count error
/// responses by their code.
pub(super) async fn record_request(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let (method, route) = (request.method().clone(), route_of(&request));
    let response = next.run(request).await;
    metrics.request(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
        metrics.error_response(code);
    }
    response
}

/// The per-request span: method, route template and request id, then status (and an
/// event with the latency) when the response is ready.
pub(super) fn trace_layer(
) -> TraceLayer<SharedClassifier<ServerErrorsAsFailures>, RequestSpan, (), Finished, (), (), ()> {
    TraceLayer::new_for_http()
        .make_span_with(RequestSpan)
        .on_request(())
        .on_response(Finished)
        .on_body_chunk(())
        .on_eos(())
        .on_failure(())
}

/// Makes the span of a request.
#[derive(Debug, Clone, Copy)]
pub(super) struct RequestSpan;

impl MakeSpan<Body> for RequestSpan {
    fn make_span(&mut self, request: &axum::http::Request<Body>) -> Span {
        let request_id = request
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        tracing::info_span!(
            "request",
            method = %request.method(),
            route = %route_of(request),
            request_id,
            status = tracing::field::Empty,
        )
    }
}

/// Logs the end of a request.
#[derive(Debug, Clone, Copy)]
pub(super) struct Finished;

impl<B> OnResponse<B> for Finished {
    fn on_response(self, response: &axum::http::Response<B>, latency: Duration, span: &Span) {
        let status = response.status().as_u16();
        span.record("status", status);
        let latency_ms = latency.as_secs_f64() * 1000.0;
        if response.status().is_server_error() {
            tracing::warn!(status, latency_ms, "request finished");
        } else {
            tracing::info!(status, latency_ms, "request finished");
        }
    }
}

/// `GET /metrics` alone.
pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// The metrics, in the OpenMetrics text format (Prometheus scrapes it).
///
/// Served on the main listener unless `LATCHKEY_METRICS_BIND` gives it a listener of
/// its own (then it is not in this document).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "The metrics",
        content_type = "application/openmetrics-text", body = String),
        super::openapi::errors::NoRefusal))]
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    let redis = state.redis.as_ref().map(|link| link.is_healthy());
    let text = state
        .service
        .metrics()
        .render(state.service.hashing().queued(), redis);
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}
