//! A webhook receiver for tests: a small axum server on a loopback port that records
//! every delivery (headers and raw body) and answers with a status the test sets; and
//! an independent check of the Standard Webhooks signature.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;
use tokio::sync::{oneshot, Notify};

/// The signing secret the tests configure (24 random-looking bytes, base64).
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
}

impl Delivery {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    pub fn kind(&self) -> String {
        self.json()["type"].as_str().unwrap().to_owned()
    }
}

#[derive(Clone, Default)]
struct Shared {
    deliveries: Arc<Mutex<Vec<Delivery>>>,
    arrived: Arc<Notify>,
    status: Arc<AtomicU16>,
}

/// A running receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Shared,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

async fn record(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    shared.deliveries.lock().unwrap().push(Delivery {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: String::from_utf8(body.to_vec()).unwrap(),
    });
    shared.arrived.notify_waiters();
    StatusCode::from_u16(shared.status.load(Ordering::SeqCst)).unwrap()
}

impl Receiver {
    /// A receiver on a free loopback port, answering 200.
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), Shared::default()).await
    }

    async fn start_on(addr: SocketAddr, shared: Shared) -> Self {
        if shared.status.load(Ordering::SeqCst) == 0 {
            shared.status.store(200, Ordering::SeqCst);
        }
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/hook", post(record))
            .with_state(shared.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Answer every later delivery with `status`.
    pub fn answer(&self, status: u16) {
        self.shared.status.store(status, Ordering::SeqCst);
    }

    /// Stop listening (the port refuses connections), keeping what was received.
    pub async fn stop(mut self) -> Stopped {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
        Stopped {
            addr: self.addr,
            shared: self.shared.clone(),
        }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.shared.deliveries.lock().unwrap().clone()
    }

    /// Wait until at least `count` deliveries arrived (failing after a minute rather
    /// than hanging); returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<Delivery> {
        let waiting = async {
            loop {
                let arrived = self.shared.arrived.notified();
                let now = self.deliveries();
                if now.len() >= count {
                    return now;
                }
                arrived.await;
            }
        };
        match tokio::time::timeout(Duration::from_secs(60), waiting).await {
            Ok(deliveries) => deliveries,
            Err(_) => panic!("expected {count} deliveries, got {:?}", self.deliveries()),
        }
    }
}

/// A stopped receiver: its port, and what it got before.
pub struct Stopped {
    pub addr: SocketAddr,
    shared: Shared,
}

impl Stopped {
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// Listen again on the same port.
    pub async fn restart(self) -> Receiver {
        Receiver::start_on(self.addr, self.shared).await
    }
}

/// Check a delivery as a receiver must, written from the specification (not with the
/// server's code): one of the `v1,` signatures is the HMAC-SHA256, under the decoded
/// secret, of `{id}.{timestamp}.{body}`; the timestamp is within five minutes of now.
pub fn assert_signed(delivery: &Delivery) {
    let secret = STANDARD
        .decode(SECRET.strip_prefix("whsec_").unwrap())
        .unwrap();
    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
    let signed = format!("{}.{}.{}", delivery.id, delivery.timestamp, delivery.body);
    let valid = delivery
        .signature
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|tag| hmac::verify(&key, signed.as_bytes(), &tag).is_ok());
    assert!(valid, "bad signature: {delivery:?}");
    let sent: u64 = delivery.timestamp.parse().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(sent.abs_diff(now) <= 300, "stale timestamp: {delivery:?}");
    assert!(delivery.id.starts_with("msg_") && !delivery.id.contains('.'));
}
