//! The audit log: every field round-trips, newest first, per-user filter.

use latchkey_core::audit::{SecurityEvent, SecurityEventKind};
use latchkey_core::model::{SessionId, UserId};

use crate::harness::{event, t, Harness};

pub(crate) async fn audit_events_round_trip_newest_first_and_filtered(h: Harness) {
    let alice = UserId::generate();
    let bob = UserId::generate();
    let session = SessionId::generate();

    let a1 = event(
        SecurityEventKind::UserRegistered,
        t(1_000),
        Some(alice),
        None,
    );
    let b1 = event(
        SecurityEventKind::LoginSucceeded,
        t(2_000),
        Some(bob),
        Some(session),
    );
    let a2 = event(
        SecurityEventKind::LoginSucceeded,
        t(3_000),
        Some(alice),
        Some(session),
    );
    // Same instant as a2, recorded later: comes first among equals.
    let a3 = event(
        SecurityEventKind::RefreshReuseDetected,
        t(3_000),
        Some(alice),
        Some(session),
    );
    let anon = SecurityEvent {
        at: t(4_000),
        kind: SecurityEventKind::LoginFailed,
        user_id: None,
        session_id: None,
        client_ip: None,
        user_agent: None,
        detail: None,
    };
    for e in [&a1, &b1, &a2, &a3, &anon] {
        h.store.record_event(e).await.unwrap();
    }

    let all = h.store.recent_events(None, 100).await.unwrap();
    assert_eq!(
        all,
        vec![anon.clone(), a3.clone(), a2.clone(), b1.clone(), a1.clone()]
    );
    assert_eq!(
        h.store.recent_events(None, 2).await.unwrap(),
        vec![anon, a3.clone()]
    );

    let alices = h.store.recent_events(Some(alice), 100).await.unwrap();
    assert_eq!(alices, vec![a3.clone(), a2.clone(), a1]);
    assert_eq!(
        h.store.recent_events(Some(alice), 2).await.unwrap(),
        vec![a3, a2]
    );
    assert_eq!(
        h.store.recent_events(Some(bob), 100).await.unwrap(),
        vec![b1]
    );
    assert!(h
        .store
        .recent_events(Some(UserId::generate()), 100)
        .await
        .unwrap()
        .is_empty());
    assert!(h.store.recent_events(None, 0).await.unwrap().is_empty());

    // Every kind survives the trip through its stored name.
    let carol = UserId::generate();
    for (i, kind) in SecurityEventKind::ALL.into_iter().enumerate() {
        let at = t(10_000 + i64::try_from(i).unwrap());
        h.store
            .record_event(&event(kind, at, Some(carol), None))
            .await
            .unwrap();
    }
    let kinds: Vec<SecurityEventKind> = h
        .store
        .recent_events(Some(carol), 100)
        .await
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, SecurityEventKind::ALL.to_vec());
}
