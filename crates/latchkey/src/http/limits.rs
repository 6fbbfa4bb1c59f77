//! Time limits on a request once hyper has read its head (the head itself is bounded by
//! the connection's header-read timeout, see [`crate::app`]):
//! - the body must arrive within `LATCHKEY_BODY_TIMEOUT` (408 `body_timeout`), and is
//!   read here, whole (it is at most [`super::MAX_BODY_BYTES`]), before anything else
//!   runs, so a request whose body trickles in never counts as in flight;
//! - the handler must answer within `LATCHKEY_REQUEST_TIMEOUT` (503 `request_timeout`).

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::{WebSettings, MAX_BODY_BYTES};

/// Read the body within the body timeout, then run the rest within the request timeout.
pub(super) async fn read_then_answer(
    State(web): State<Arc<WebSettings>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match tokio::time::timeout(web.body_timeout, to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => return body_error(&e).into_response(),
        Err(_) => {
            tracing::debug!("request body timed out");
            return ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the request body did not arrive in time",
            )
            .into_response();
        }
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    match tokio::time::timeout(web.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeout = ?web.request_timeout,
                "a request took too long to answer"
            );
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "request_timeout",
                "the server took too long to answer; retry shortly",
            )
            .into_response()
        }
    }
}

/// The same answers as the JSON extractors give for a body that cannot be read.
fn body_error(e: &axum::Error) -> ApiError {
    let too_large = std::error::Error::source(e)
        .is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
    if too_large {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        )
    } else {
        ApiError::bad_request("invalid_body", "the request body could not be read")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::routing::get;
    use axum::{middleware, Router};
    use clap::Parser;
    use tower::ServiceExt;

    use super::*;
    use crate::config::Config;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[tokio::test]
    async fn a_handler_that_takes_too_long_is_answered_503_request_timeout() {
        let config = Cli::try_parse_from(["latchkey", "--request-timeout", "100ms"])
            .unwrap()
            .config;
        let web = Arc::new(WebSettings::from_config(&config));
        let app = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(std::time::Duration::from_secs(600)).await;
                    "too late"
                }),
            )
            .route("/fast", get(|| async { "in time" }))
            .layer(middleware::from_fn_with_state(web, read_then_answer));
        let request = |path: &str| Request::get(path).body(Body::empty()).unwrap();
        let fast = app.clone().oneshot(request("/fast")).await.unwrap();
        assert_eq!(fast.status(), StatusCode::OK);
        let slow = app.oneshot(request("/slow")).await.unwrap();
        assert_eq!(slow.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = to_bytes(slow.into_body(), 4096).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "request_timeout");
    }
}
