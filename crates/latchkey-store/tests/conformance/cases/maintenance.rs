//! Housekeeping and health: purging, ping, closing, durability across reopening.

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::model::Role;
use latchkey_core::store::{Revoked, RotateOutcome, Rotation, StoreError, StoredSigningKey};

use crate::harness::{event, random_hash, stored_session, stored_user, successor_of, t, Harness};

pub(crate) async fn purge_expired_removes_expired_entries_and_old_sessions(h: Harness) {
    let user = stored_user(&h.store, "m1@example.com").await;
    let (old, old_first) = stored_session(&h.store, &user, t(1_000)).await;
    let rotation = Rotation {
        session_id: old.id,
        presented: old_first.hash.clone(),
        presented_generation: 0,
        successor: random_hash(),
        now: t(1_500),
        client_ip: None,
    };
    assert_eq!(
        h.store.rotate(&rotation).await.unwrap(),
        RotateOutcome::Rotated
    );
    let (young, young_first) = stored_session(&h.store, &user, t(10_000)).await;

    h.store
        .deny_access_token("expired", t(5_000))
        .await
        .unwrap();
    h.store
        .deny_access_token("expires-now", t(6_000))
        .await
        .unwrap();
    h.store.deny_access_token("alive", t(20_000)).await.unwrap();

    // 2 revocation entries + 1 session (its 2 tokens go with it).
    assert_eq!(h.store.purge_expired(t(6_000), t(5_000)).await.unwrap(), 3);

    assert_eq!(h.store.session(old.id).await.unwrap(), None);
    assert_eq!(h.store.refresh_state(&old_first).await.unwrap(), None);
    assert_eq!(
        h.store
            .refresh_state(&successor_of(&rotation))
            .await
            .unwrap(),
        None
    );
    assert_eq!(h.store.session(young.id).await.unwrap(), Some(young));
    assert!(h.store.refresh_state(&young_first).await.unwrap().is_some());
    assert!(h.store.user_by_id(user.id).await.unwrap().is_some());

    let left = h.store.revocations_after(0, t(0), 100).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].revoked, Revoked::AccessToken("alive".to_owned()));

    assert_eq!(h.store.purge_expired(t(6_000), t(5_000)).await.unwrap(), 0);
}

pub(crate) async fn live_sessions_are_counted_by_both_lifetimes(h: Harness) {
    let user = stored_user(&h.store, "m3@example.com").await;
    assert_eq!(h.store.count_live_sessions(t(0), t(0)).await.unwrap(), 0);
    let (old, _) = stored_session(&h.store, &user, t(1_000)).await;
    let (rotated, first) = stored_session(&h.store, &user, t(2_000)).await;
    let (revoked, _) = stored_session(&h.store, &user, t(3_000)).await;
    let rotation = Rotation {
        session_id: rotated.id,
        presented: first.hash.clone(),
        presented_generation: 0,
        successor: random_hash(),
        now: t(9_000),
        client_ip: None,
    };
    assert_eq!(
        h.store.rotate(&rotation).await.unwrap(),
        RotateOutcome::Rotated
    );
    let ev = event(
        SecurityEventKind::SessionRevoked,
        t(4_000),
        Some(user.id),
        Some(revoked.id),
    );
    assert!(h
        .store
        .revoke_session(revoked.id, t(4_000), t(5_000), &ev)
        .await
        .unwrap());
    // The two unrevoked sessions count while both limits lie before them.
    assert_eq!(h.store.count_live_sessions(t(0), t(0)).await.unwrap(), 2);
    // Created after 1.5 s: the old session is past its absolute lifetime.
    assert_eq!(
        h.store.count_live_sessions(t(1_500), t(0)).await.unwrap(),
        1
    );
    // Used after 5 s: only the rotated session's newest token (issued at 9 s) is recent;
    // its first token (issued at 2 s) does not count.
    assert_eq!(
        h.store.count_live_sessions(t(0), t(5_000)).await.unwrap(),
        1
    );
    assert_eq!(
        h.store.count_live_sessions(t(0), t(9_000)).await.unwrap(),
        0
    );
    let _ = old;
}

pub(crate) async fn ping_answers_and_closed_store_is_unavailable(mut h: Harness) {
    h.store.ping().await.unwrap();
    h.close().await;
    let err = h.store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "got {err:?}");
    let err = h.store.deny_access_token("x", t(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "got {err:?}");
}

pub(crate) async fn data_survives_reopening(mut h: Harness) {
    let mut user = stored_user(&h.store, "m2@example.com").await;
    user.roles = vec![Role::admin()];
    assert!(h.store.set_user_roles(user.id, &user.roles).await.unwrap());
    let (session, first) = stored_session(&h.store, &user, t(1_000)).await;
    let rotation = Rotation {
        session_id: session.id,
        presented: first.hash.clone(),
        presented_generation: 0,
        successor: random_hash(),
        now: t(2_000),
        client_ip: None,
    };
    assert_eq!(
        h.store.rotate(&rotation).await.unwrap(),
        RotateOutcome::Rotated
    );
    h.store
        .deny_access_token("jti-keep", t(50_000))
        .await
        .unwrap();
    let key = StoredSigningKey {
        kid: "kid-keep".to_owned(),
        algorithm: "HS256".to_owned(),
        private_key: vec![0, 1, 2, 255],
        created_at: t(1_000),
        retired_at: None,
    };
    assert!(h.store.insert_first_signing_key(&key).await.unwrap());
    let secret = h.store.secret_or_insert("master", &[9; 32]).await.unwrap();
    let ev = event(
        SecurityEventKind::LoginSucceeded,
        t(1_000),
        Some(user.id),
        Some(session.id),
    );
    h.store.record_event(&ev).await.unwrap();
    let log_before = h.store.revocations_after(0, t(0), 100).await.unwrap();

    h.reopen().await;

    assert_eq!(
        h.store.user_by_email(&user.email).await.unwrap(),
        Some(user.clone())
    );
    let spent = h.store.refresh_state(&first).await.unwrap().unwrap();
    assert_eq!(spent.token.spent_at, Some(t(2_000)));
    assert_eq!(spent.session.latest_generation, 1);
    assert_eq!(
        h.store
            .refresh_state(&successor_of(&rotation))
            .await
            .unwrap()
            .unwrap()
            .token
            .generation,
        1
    );
    assert_eq!(
        h.store.revocations_after(0, t(0), 100).await.unwrap(),
        log_before
    );
    assert_eq!(h.store.signing_keys().await.unwrap(), vec![key]);
    assert_eq!(
        h.store.secret_or_insert("master", &[1; 32]).await.unwrap(),
        secret
    );
    assert_eq!(
        h.store.recent_events(Some(user.id), 10).await.unwrap(),
        vec![ev]
    );
    h.store.ping().await.unwrap();
}
