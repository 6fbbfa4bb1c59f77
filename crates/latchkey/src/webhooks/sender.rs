//! Posting one signed message: the Standard Webhooks headers, a timeout, no redirects,
//! and what the answer means (2xx delivered; 410 never again; anything else retried,
//! after `Retry-After` when the receiver names one).

use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use latchkey_core::webhook::WebhookSigner;

use crate::clock;
use crate::outbox::Failure;

/// Posts signed messages over HTTPS (or HTTP to loopback), with webpki's roots.
#[derive(Clone)]
pub(crate) struct Sender {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    signer: Arc<WebhookSigner>,
    timeout: Duration,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The TLS settings: aws-lc-rs, TLS 1.2 and 1.3, the Mozilla roots of `webpki-roots`.
fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// An error with its causes, on one line (hyper's own says only "client error").
fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    line
}

impl Sender {
    /// A sender signing with `signer`, waiting at most `timeout` for an answer.
    pub(crate) fn new(signer: WebhookSigner, timeout: Duration) -> Result<Self, rustls::Error> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config()?)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
            signer: Arc::new(signer),
            timeout,
        })
    }

    /// Post `body` as message `id` to `endpoint`, signed now. The status, if 2xx.
    pub(crate) async fn post(
        &self,
        endpoint: &str,
        id: &str,
        body: &str,
    ) -> Result<StatusCode, Failure> {
        let timestamp = clock::now().unix_seconds();
        let request = Request::post(endpoint)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, concat!("latchkey/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", self.signer.sign(id, timestamp, body))
            .body(Full::new(Bytes::from(body.to_owned())))
            .map_err(|_| Failure::permanent("the endpoint is not a URL"))?;
        let answer = tokio::time::timeout(self.timeout, self.client.request(request))
            .await
            .map_err(|_| Failure::transient(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| Failure::transient(chain(&e)))?;
        let status = answer.status();
        if status.is_success() {
            return Ok(status);
        }
        if status == StatusCode::GONE {
            return Err(Failure::permanent(
                "HTTP 410 Gone: the receiver asked for no more messages",
            ));
        }
        let mut failure = Failure::transient(if status.is_redirection() {
            format!("HTTP {status} (redirects are not followed: configure the final URL)")
        } else {
            format!("HTTP {status}")
        });
        failure.retry_after = answer
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Err(failure)
    }
}
