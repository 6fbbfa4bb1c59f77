//! With the `otlp` feature, the server's spans reach an OpenTelemetry collector: the
//! built binary runs with `OTEL_EXPORTER_OTLP_ENDPOINT` pointing at a small OTLP/HTTP
//! receiver in this test, which reads the protobuf body with a decoder of its own (only
//! the fields it checks: span names, string and integer attributes, the resource's).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use tokio::process::Command;

use crate::replicas::Replica;

/// A span as the receiver got it.
#[derive(Debug, Default, Clone)]
struct ReceivedSpan {
    service: String,
    name: String,
    attributes: BTreeMap<String, String>,
}

type Received = Arc<Mutex<Vec<ReceivedSpan>>>;

/// One field of a protobuf message: its number and, for the wire types used here, the
/// value (a varint, or the bytes of a length-delimited field).
enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

fn varint(buf: &mut &[u8]) -> u64 {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (byte, rest) = buf.split_first().expect("a complete varint");
        *buf = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
    }
    panic!("varint too long")
}

/// The fields of a protobuf message, in order.
fn fields(mut buf: &[u8]) -> Vec<(u64, Field<'_>)> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf);
        let field = match key & 7 {
            0 => Field::Varint(varint(&mut buf)),
            1 | 5 => {
                let width = if key & 7 == 1 { 8 } else { 4 };
                buf = &buf[width..];
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(varint(&mut buf)).unwrap();
                let (bytes, rest) = buf.split_at(len);
                buf = rest;
                Field::Bytes(bytes)
            }
            other => panic!("wire type {other} is not expected in OTLP"),
        };
        out.push((key >> 3, field));
    }
    out
}

fn bytes_of(message: &[u8], number: u64) -> Vec<&[u8]> {
    fields(message)
        .into_iter()
        .filter_map(|(n, f)| match f {
            Field::Bytes(b) if n == number => Some(b),
            _ => None,
        })
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8")
}

/// `KeyValue { 1: key, 2: AnyValue { 1: string_value | 3: int_value | ... } }`: the
/// key and the value as text (strings and integers; other kinds as "?").
fn attributes(message: &[u8], number: u64) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in bytes_of(message, number) {
        let key = bytes_of(pair, 1)
            .first()
            .map(|k| text(k))
            .unwrap_or_default();
        let value = bytes_of(pair, 2)
            .first()
            .and_then(|any| fields(any).into_iter().next())
            .map_or_else(String::new, |(n, f)| match (n, f) {
                (1, Field::Bytes(s)) => text(s),
                (3, Field::Varint(i)) => i.to_string(),
                _ => "?".to_owned(),
            });
        out.insert(key, value);
    }
    out
}

/// `ExportTraceServiceRequest { 1: ResourceSpans { 1: Resource { 1: attributes },
/// 2: ScopeSpans { 2: Span { 5: name, 9: attributes } } } }`.
fn spans_of(request: &[u8]) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for resource_spans in bytes_of(request, 1) {
        let resource = bytes_of(resource_spans, 1)
            .first()
            .map(|r| attributes(r, 1))
            .unwrap_or_default();
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for scope_spans in bytes_of(resource_spans, 2) {
            for span in bytes_of(scope_spans, 2) {
                out.push(ReceivedSpan {
                    service: service.clone(),
                    name: bytes_of(span, 5)
                        .first()
                        .map(|n| text(n))
                        .unwrap_or_default(),
                    attributes: attributes(span, 9),
                });
            }
        }
    }
    out
}

/// `POST /v1/traces`, as a collector answers it (an empty `ExportTraceServiceResponse`).
async fn receive(
    State(received): State<Received>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1]) {
    assert_eq!(headers["content-type"], "application/x-protobuf");
    received.lock().unwrap().extend(spans_of(&body));
    (StatusCode::OK, [("content-type", "application/x-protobuf")])
}

#[tokio::test]
async fn a_request_span_reaches_the_otlp_collector() {
    let received = Received::default();
    let collector = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, collector).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("latchkey.db").display());
    let server = Replica::start(
        &database,
        None,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &collector_url),
            // The request span is at info level; LATCHKEY_LOG decides what is exported too.
            ("LATCHKEY_LOG", "warn,latchkey::http::observe=info"),
        ],
    )
    .await;

    let response = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    // Stopped with SIGTERM (this test's own child, by its pid), the server sends the
    // spans still in its batch before it exits: no waiting on the export interval.
    let status = server.terminate().await;
    assert!(status.success(), "{status}");
    let spans = received.lock().unwrap().clone();
    let span = spans
        .iter()
        .find(|s| s.name == "request" && s.attributes.get("request_id") == Some(&request_id))
        .unwrap_or_else(|| panic!("no request span for {request_id} among {spans:?}"));
    assert_eq!(span.service, "latchkey");
    assert_eq!(span.attributes["route"], "/healthz");
    assert_eq!(span.attributes["method"], "GET");
    assert_eq!(span.attributes["status"], "200");
}

/// A collector URL that is not http:// stops the start with a message saying so.
#[tokio::test]
async fn an_endpoint_that_is_not_an_http_url_is_refused_at_start() {
    let output = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["keys", "list"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")
        .env("LATCHKEY_DATABASE_URL", "sqlite:///nonexistent/latchkey.db")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_ENDPOINT must be an http:// URL"),
        "{stderr}"
    );
}
