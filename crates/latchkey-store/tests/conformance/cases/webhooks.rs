//! Webhooks: messages queued with their events (per endpoint, only for events that are
//! sent), claims as compare-and-sets (one winner across store instances), leases that
//! fence settling, retries, failures kept, endpoints removed; and the audit log's pages.

use std::collections::BTreeSet;

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::store::{DeliveryAttempt, QueuedWebhook};
use serde_json::Value;

use crate::harness::{event, stored_session, stored_user, t, Harness};

const A: &str = "https://a.example/hook";
const B: &str = "http://127.0.0.1:9/hook";

fn endpoints(urls: &[&str]) -> Vec<String> {
    urls.iter().map(|u| (*u).to_owned()).collect()
}

pub(crate) async fn events_queue_one_message_per_endpoint_with_the_event(h: Harness) {
    let user = stored_user(&h.store, "hooked@example.com").await;
    let sent = event(SecurityEventKind::NewDevice, t(2_000), Some(user.id), None);
    // No endpoints yet: nothing is queued.
    h.store.record_event(&sent).await.unwrap();
    assert!(h
        .store
        .claim_webhooks(t(9_000), t(99_000), 10)
        .await
        .unwrap()
        .is_empty());

    h.store
        .set_webhook_endpoints(&endpoints(&[A, B]), t(2_500))
        .await
        .unwrap();
    h.store.record_event(&sent).await.unwrap();
    // Not sent: a login, and a login ceiling for an address without an account.
    let login = event(
        SecurityEventKind::LoginSucceeded,
        t(3_000),
        Some(user.id),
        None,
    );
    let ceiling = event(SecurityEventKind::LoginCeilingReached, t(3_000), None, None);
    h.store.record_event(&login).await.unwrap();
    h.store.record_event(&ceiling).await.unwrap();
    // Recorded inside another change's transaction: the revocation after a reuse.
    let (session, _) = stored_session(&h.store, &user, t(3_500)).await;
    let reuse = event(
        SecurityEventKind::RefreshReuseDetected,
        t(4_000),
        Some(user.id),
        Some(session.id),
    );
    assert!(h
        .store
        .revoke_session(session.id, t(4_000), t(60_000), &reuse)
        .await
        .unwrap());

    let claimed = h
        .store
        .claim_webhooks(t(9_000), t(99_000), 10)
        .await
        .unwrap();
    let shape: Vec<(&str, &str)> = claimed
        .iter()
        .map(|m| (m.event_type.as_str(), m.endpoint.as_str()))
        .collect();
    assert_eq!(shape.len(), 4, "{shape:?}");
    for kind in ["session.new_device", "session.refresh_reuse_detected"] {
        let mut to: Vec<&str> = shape.iter().filter(|s| s.0 == kind).map(|s| s.1).collect();
        to.sort_unstable();
        assert_eq!(to, [B, A], "{kind}");
    }
    let device: Vec<&QueuedWebhook> = claimed
        .iter()
        .filter(|m| m.event_type == "session.new_device")
        .collect();
    assert_eq!(
        device[0].message_id, device[1].message_id,
        "one id per event"
    );
    assert!(device[0].message_id.starts_with("msg_"));
    assert_ne!(device[0].message_id, claimed[3].message_id);
    assert_eq!((device[0].attempts, device[0].created_at), (0, t(2_000)));
    let body: Value = serde_json::from_str(&device[0].body).unwrap();
    assert_eq!(body["type"], "session.new_device");
    assert_eq!(body["data"]["email"], "hooked@example.com");
    assert_eq!(body["data"]["user_id"], user.id.to_string());
    let reuse_body: Value = serde_json::from_str(&claimed[3].body).unwrap();
    assert_eq!(reuse_body["data"]["session_id"], session.id.to_string());
}

pub(crate) async fn webhook_claims_lease_retry_fail_and_survive_reopening(mut h: Harness) {
    let user = stored_user(&h.store, "lease@example.com").await;
    h.store
        .set_webhook_endpoints(&endpoints(&[A]), t(1_000))
        .await
        .unwrap();
    for at in [2_000, 2_100] {
        let e = event(
            SecurityEventKind::PasswordChanged,
            t(at),
            Some(user.id),
            None,
        );
        h.store.record_event(&e).await.unwrap();
    }
    h.reopen().await;
    assert!(h
        .store
        .claim_webhooks(t(1_999), t(9_000), 10)
        .await
        .unwrap()
        .is_empty());
    let claimed = h
        .store
        .claim_webhooks(t(3_000), t(63_000), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].lease_until, t(63_000));
    // Leased: not handed out again before the lease ends.
    assert!(h
        .store
        .claim_webhooks(t(4_000), t(64_000), 10)
        .await
        .unwrap()
        .is_empty());
    let (first, second) = (&claimed[0], &claimed[1]);
    assert!(h
        .store
        .settle_webhook(first, &DeliveryAttempt::Sent, t(5_000))
        .await
        .unwrap());
    // Settled once: a second outcome for the same claim changes nothing.
    assert!(!h
        .store
        .settle_webhook(first, &DeliveryAttempt::Sent, t(5_000))
        .await
        .unwrap());
    let retry = DeliveryAttempt::Retry {
        at: t(10_000),
        error: "HTTP 503".to_owned(),
    };
    assert!(h
        .store
        .settle_webhook(second, &retry, t(5_000))
        .await
        .unwrap());
    assert!(h
        .store
        .claim_webhooks(t(9_999), t(70_000), 10)
        .await
        .unwrap()
        .is_empty());
    let again = h
        .store
        .claim_webhooks(t(10_000), t(70_000), 10)
        .await
        .unwrap();
    assert_eq!(
        (again.len(), again[0].id, again[0].attempts),
        (1, second.id, 1)
    );
    assert_eq!(again[0].body, second.body, "the same body on every attempt");
    // The lease ran out and another worker claimed it: the first claim is refused.
    let stolen = h
        .store
        .claim_webhooks(t(70_000), t(130_000), 10)
        .await
        .unwrap();
    assert_eq!(stolen.len(), 1);
    let give_up = DeliveryAttempt::GiveUp {
        error: "HTTP 410".to_owned(),
    };
    assert!(!h
        .store
        .settle_webhook(&again[0], &give_up, t(71_000))
        .await
        .unwrap());
    assert!(h
        .store
        .settle_webhook(&stolen[0], &give_up, t(71_000))
        .await
        .unwrap());

    let undelivered = h.store.undelivered_webhooks(10).await.unwrap();
    assert_eq!(undelivered.len(), 1, "{undelivered:?}");
    let failed = &undelivered[0];
    assert_eq!(failed.id, second.id);
    assert_eq!(failed.attempts, 2);
    assert_eq!(failed.failed_at, Some(t(71_000)));
    assert_eq!(failed.next_attempt_at, None);
    assert_eq!(failed.last_error.as_deref(), Some("HTTP 410"));
    assert!(h
        .store
        .claim_webhooks(t(999_000), t(999_999), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(h.store.purge_webhooks(t(71_000)).await.unwrap(), 1);
    assert_eq!(h.store.purge_webhooks(t(71_001)).await.unwrap(), 1);
    assert!(h.store.undelivered_webhooks(10).await.unwrap().is_empty());
}

pub(crate) async fn concurrent_webhook_claims_have_one_winner(h: Harness) {
    let user = stored_user(&h.store, "race@example.com").await;
    h.store
        .set_webhook_endpoints(&endpoints(&[A, B]), t(1_000))
        .await
        .unwrap();
    for i in 0..15 {
        let e = event(
            SecurityEventKind::MfaReset,
            t(2_000 + i),
            Some(user.id),
            None,
        );
        h.store.record_event(&e).await.unwrap();
    }
    let other = h.open_another().await;
    let claimer = |store: std::sync::Arc<dyn latchkey_core::store::Store>| async move {
        let mut ids = Vec::new();
        loop {
            let batch = store.claim_webhooks(t(5_000), t(65_000), 3).await.unwrap();
            if batch.is_empty() {
                return ids;
            }
            ids.extend(batch.into_iter().map(|m| m.id));
        }
    };
    let (mine, theirs) = tokio::join!(
        tokio::spawn(claimer(h.store.clone())),
        tokio::spawn(claimer(other))
    );
    let (mine, theirs) = (mine.unwrap(), theirs.unwrap());
    let all: BTreeSet<i64> = mine.iter().chain(&theirs).copied().collect();
    assert_eq!(mine.len() + theirs.len(), 30, "every message claimed once");
    assert_eq!(all.len(), 30);
}

pub(crate) async fn removing_an_endpoint_gives_up_its_queued_messages(h: Harness) {
    let user = stored_user(&h.store, "moved@example.com").await;
    h.store
        .set_webhook_endpoints(&endpoints(&[A, B]), t(1_000))
        .await
        .unwrap();
    let e = event(
        SecurityEventKind::UserDisabled,
        t(2_000),
        Some(user.id),
        None,
    );
    h.store.record_event(&e).await.unwrap();
    h.store
        .set_webhook_endpoints(&endpoints(&[B]), t(3_000))
        .await
        .unwrap();
    let failed = h.store.undelivered_webhooks(10).await.unwrap();
    let gone: Vec<_> = failed.iter().filter(|m| m.failed_at.is_some()).collect();
    assert_eq!(gone.len(), 1, "{failed:?}");
    assert_eq!(
        (gone[0].endpoint.as_str(), gone[0].failed_at),
        (A, Some(t(3_000)))
    );
    let due = h
        .store
        .claim_webhooks(t(4_000), t(64_000), 10)
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].endpoint.as_str(), due[0].event_type.as_str()),
        (B, "user.disabled")
    );
    // Without endpoints, events queue nothing.
    h.store.set_webhook_endpoints(&[], t(5_000)).await.unwrap();
    h.store.record_event(&e).await.unwrap();
    assert!(h
        .store
        .claim_webhooks(t(999_000), t(999_999), 10)
        .await
        .unwrap()
        .is_empty());
}

pub(crate) async fn logged_events_page_in_time_order_with_addresses(h: Harness) {
    let ann = stored_user(&h.store, "ann@example.com").await;
    let bob = stored_user(&h.store, "bob@example.com").await;
    let times = [(1_000, &ann), (3_000, &bob), (2_000, &ann), (3_000, &ann)];
    for (at, user) in times {
        let e = event(
            SecurityEventKind::LoginSucceeded,
            t(at),
            Some(user.id),
            None,
        );
        h.store.record_event(&e).await.unwrap();
    }
    let last_two = h.store.logged_events(None, None, 2).await.unwrap();
    let at_of = |page: &[latchkey_core::store::LoggedEvent]| -> Vec<i64> {
        page.iter().map(|e| e.event.at.unix_millis()).collect()
    };
    assert_eq!(at_of(&last_two), [3_000, 3_000]);
    assert!(last_two[0].position < last_two[1].position);
    assert_eq!(
        last_two[0].email.as_ref().unwrap().as_str(),
        "bob@example.com"
    );
    let all = h.store.logged_events(None, None, 10).await.unwrap();
    assert_eq!(at_of(&all), [1_000, 2_000, 3_000, 3_000]);
    let after = h
        .store
        .logged_events(None, Some(all[1].position), 10)
        .await
        .unwrap();
    assert_eq!(after, all[2..].to_vec());
    let page = h
        .store
        .logged_events(None, Some(all[0].position), 1)
        .await
        .unwrap();
    assert_eq!(page, all[1..2].to_vec());
    let anns = h.store.logged_events(Some(ann.id), None, 10).await.unwrap();
    assert_eq!(at_of(&anns), [1_000, 2_000, 3_000]);
    assert!(anns
        .iter()
        .all(|e| e.email.as_ref().unwrap().as_str() == "ann@example.com"));
}
