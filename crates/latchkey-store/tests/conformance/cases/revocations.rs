//! The revocation log: idempotent denials, ordering, expiry, cursor safety.

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::store::{RevocationEntry, Revoked};

use crate::harness::{event, stored_session, stored_user, t, Harness};

fn jti(entry: &RevocationEntry) -> Option<&str> {
    match &entry.revoked {
        Revoked::AccessToken(jti) => Some(jti),
        Revoked::Session(_) | Revoked::Key(_) => None,
    }
}

pub(crate) async fn deny_access_token_is_idempotent(h: Harness) {
    h.store.deny_access_token("jti-1", t(5_000)).await.unwrap();
    h.store.deny_access_token("jti-1", t(5_000)).await.unwrap();
    // A repeat with another expiry changes nothing either.
    h.store.deny_access_token("jti-1", t(8_000)).await.unwrap();

    let log = h.store.revocations_after(0, t(1_000), 100).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].revoked, Revoked::AccessToken("jti-1".to_owned()));
    assert_eq!(log[0].expires_at, t(5_000));
}

pub(crate) async fn revocations_after_orders_filters_and_limits(h: Harness) {
    let user = stored_user(&h.store, "r1@example.com").await;
    let (session, _) = stored_session(&h.store, &user, t(1_000)).await;

    h.store.deny_access_token("a", t(5_000)).await.unwrap();
    h.store.deny_access_token("b", t(1_500)).await.unwrap();
    let ev = event(
        SecurityEventKind::SessionRevoked,
        t(1_200),
        Some(user.id),
        Some(session.id),
    );
    assert!(h
        .store
        .revoke_session(session.id, t(1_200), t(9_000), &ev)
        .await
        .unwrap());
    h.store.deny_access_token("d", t(7_000)).await.unwrap();

    let all = h.store.revocations_after(0, t(1_000), 100).await.unwrap();
    assert_eq!(all.len(), 4);
    assert!(
        all.windows(2).all(|w| w[0].seq < w[1].seq),
        "strictly increasing seq"
    );
    assert!(all[0].seq > 0);

    // In force at 2000: "b" has expired; order is append order.
    let live = h.store.revocations_after(0, t(2_000), 100).await.unwrap();
    let kinds: Vec<Revoked> = live.iter().map(|e| e.revoked.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            Revoked::AccessToken("a".to_owned()),
            Revoked::Session(session.id),
            Revoked::AccessToken("d".to_owned()),
        ]
    );
    assert_eq!(live[1].expires_at, t(9_000));

    // Cursor and limit.
    let after_a = h
        .store
        .revocations_after(live[0].seq, t(2_000), 100)
        .await
        .unwrap();
    assert_eq!(after_a, live[1..].to_vec());
    let first_only = h.store.revocations_after(0, t(2_000), 1).await.unwrap();
    assert_eq!(first_only, live[..1].to_vec());
    let last_seq = live[2].seq;
    assert!(h
        .store
        .revocations_after(last_seq, t(2_000), 100)
        .await
        .unwrap()
        .is_empty());

    // Expiry is exclusive: an entry expiring exactly at `now` is no longer in force.
    let at_five = h.store.revocations_after(0, t(5_000), 100).await.unwrap();
    assert_eq!(
        at_five.iter().filter_map(jti).collect::<Vec<_>>(),
        vec!["d"]
    );
    assert_eq!(at_five.len(), 2);
    assert!(h
        .store
        .revocations_after(0, t(9_000), 100)
        .await
        .unwrap()
        .is_empty());
}

pub(crate) async fn revocation_seq_never_reused_after_purge(h: Harness) {
    h.store.deny_access_token("old", t(1_000)).await.unwrap();
    h.store.deny_access_token("newest", t(2_000)).await.unwrap();
    let before = h.store.revocations_after(0, t(0), 100).await.unwrap();
    let highest = before.iter().map(|e| e.seq).max().unwrap();

    // Purge everything, including the newest entry, then append again.
    assert_eq!(h.store.purge_expired(t(3_000), t(0)).await.unwrap(), 2);
    h.store.deny_access_token("next", t(10_000)).await.unwrap();
    let after = h
        .store
        .revocations_after(highest, t(3_000), 100)
        .await
        .unwrap();
    assert_eq!(
        after.len(),
        1,
        "a reader whose cursor is at {highest} must see the new entry"
    );
    assert!(after[0].seq > highest);
}
