//! Optional OpenTelemetry export (the `otlp` cargo feature): the spans of the server's
//! tracing (a `request` span per request with method, route, request id and status, and
//! what runs inside it) go over OTLP/HTTP, protobuf-encoded, to the collector at
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` is appended; the standard
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_SERVICE_NAME`
//! and `OTEL_BSP_*` variables apply). Spans leave in batches from a thread of their own,
//! off the request path; the rest are sent when the command ends.
//!
//! The exporter speaks plain HTTP only (its client has no TLS, which would change the
//! workspace's shared `reqwest`): a remote collector behind TLS is reached through a
//! collector or agent on the same host or network.
//!
//! Without the feature, or without the variable, nothing is exported.

#[cfg(feature = "otlp")]
pub(crate) use enabled::{exporter, Exporting};

#[cfg(not(feature = "otlp"))]
pub(crate) use disabled::{exporter, warn_if_asked_for, Exporting};

/// The layer that exports spans, for a subscriber `S`.
pub(crate) type SpanLayer<S> = Box<dyn tracing_subscriber::Layer<S> + Send + Sync + 'static>;

#[cfg(feature = "otlp")]
mod enabled {
    use anyhow::{anyhow, Context};
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::{SpanExporter, WithExportConfig};
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use opentelemetry_sdk::Resource;
    use tracing::Subscriber;
    use tracing_subscriber::filter::filter_fn;
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::Layer;

    use super::SpanLayer;

    const ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    const TRACES_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";

    /// Spans being exported; dropping it sends those not yet sent and stops the export.
    pub(crate) struct Exporting {
        provider: SdkTracerProvider,
        endpoint: String,
    }

    impl Exporting {
        /// The collector's URL, without any password.
        pub(crate) fn endpoint(&self) -> &str {
            &self.endpoint
        }
    }

    impl Drop for Exporting {
        fn drop(&mut self) {
            if let Err(error) = self.provider.shutdown() {
                eprintln!(
                    "warning: the last spans may not have reached the OTLP collector: {error}"
                );
            }
        }
    }

    /// The export layer and its handle when an endpoint is set; an error for an endpoint
    /// that is not an `http://` or `https://` URL (the exporter would fall back to its
    /// default address without a word).
    pub(crate) fn exporter<S>() -> anyhow::Result<Option<(SpanLayer<S>, Exporting)>>
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static,
    {
        let set = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let Some((variable, endpoint)) = set(TRACES_ENDPOINT)
            .map(|v| (TRACES_ENDPOINT, v))
            .or_else(|| set(ENDPOINT).map(|v| (ENDPOINT, v)))
        else {
            return Ok(None);
        };
        let http_url = endpoint
            .trim()
            .parse::<axum::http::Uri>()
            .is_ok_and(|uri| uri.scheme_str() == Some("http") && uri.host().is_some());
        if !http_url {
            return Err(anyhow!(
                "{variable} must be an http:// URL (OTLP/HTTP), such as http://127.0.0.1:4318: \
                 for a collector behind TLS, send to a local collector or agent that forwards"
            ));
        }
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .build()
            .context("cannot set up the OTLP exporter")?;
        let mut resource = Resource::builder();
        if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("latchkey");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let layer = tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("latchkey"))
            // The exporter's own diagnostics go to the log only, never back into spans.
            .with_filter(filter_fn(|meta| {
                !meta.target().starts_with("opentelemetry")
            }))
            .boxed();
        let endpoint = latchkey::config::redact_url(&endpoint);
        Ok(Some((layer, Exporting { provider, endpoint })))
    }
}

#[cfg(not(feature = "otlp"))]
mod disabled {
    use tracing::Subscriber;
    use tracing_subscriber::registry::LookupSpan;

    use super::SpanLayer;

    /// Never made: this build exports nothing.
    pub(crate) enum Exporting {}

    impl Exporting {
        pub(crate) fn endpoint(&self) -> &str {
            match *self {}
        }
    }

    /// Say so when a collector is named but this build cannot export (call once logging
    /// is set up).
    pub(crate) fn warn_if_asked_for() {
        if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
            tracing::warn!(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set, but this latchkey was built without the \
                 `otlp` feature: no spans are exported (cargo build --release --features otlp)"
            );
        }
    }

    /// Nothing to export in a build without the `otlp` feature.
    pub(crate) fn exporter<S>() -> anyhow::Result<Option<(SpanLayer<S>, Exporting)>>
    where
        S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync + 'static,
    {
        Ok(None)
    }
}
