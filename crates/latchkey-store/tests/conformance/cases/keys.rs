//! Signing keys and server secrets, including first-start races between replicas.

use std::sync::Arc;

use latchkey_core::store::{Store, StoredSigningKey};
use tokio::task::JoinSet;

use crate::harness::{t, Harness};

fn key(kid: &str, created_at: i64) -> StoredSigningKey {
    StoredSigningKey {
        kid: kid.to_owned(),
        algorithm: "EdDSA".to_owned(),
        private_key: format!("pkcs8-der-of-{kid}").into_bytes(),
        created_at: t(created_at),
        retired_at: None,
    }
}

pub(crate) async fn first_signing_key_race_has_one_winner(h: Harness) {
    assert!(h.store.signing_keys().await.unwrap().is_empty());
    let stores = [Arc::clone(&h.store), h.open_another().await];

    let mut tasks = JoinSet::new();
    for i in 0..8 {
        let store = Arc::clone(&stores[i % 2]);
        let candidate = key(&format!("k{i}"), 1_000);
        tasks.spawn(async move {
            let stored = store.insert_first_signing_key(&candidate).await.unwrap();
            (stored, candidate)
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (stored, candidate) = joined.unwrap();
        if stored {
            winners.push(candidate);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one first key");
    assert_eq!(h.store.signing_keys().await.unwrap(), winners);

    // Later first-start attempts do nothing.
    assert!(!h
        .store
        .insert_first_signing_key(&key("late", 5_000))
        .await
        .unwrap());
    assert_eq!(h.store.signing_keys().await.unwrap(), winners);
}

pub(crate) async fn rotate_signing_key_retires_previous_and_old_keys_are_deleted(h: Harness) {
    let k1 = key("k1", 1_000);
    assert!(h.store.insert_first_signing_key(&k1).await.unwrap());
    let mut k2 = key("k2", 2_000);
    k2.algorithm = "ES256".to_owned();
    h.store.rotate_signing_key(&k2).await.unwrap();

    let keys = h.store.signing_keys().await.unwrap();
    let retired_k1 = StoredSigningKey {
        retired_at: Some(t(2_000)),
        ..k1.clone()
    };
    assert_eq!(keys, vec![k2.clone(), retired_k1.clone()]);

    let k3 = key("k3", 3_000);
    h.store.rotate_signing_key(&k3).await.unwrap();
    let retired_k2 = StoredSigningKey {
        retired_at: Some(t(3_000)),
        ..k2.clone()
    };
    assert_eq!(
        h.store.signing_keys().await.unwrap(),
        vec![k3.clone(), retired_k2.clone(), retired_k1]
    );
    assert_eq!(
        h.store
            .signing_keys()
            .await
            .unwrap()
            .iter()
            .filter(|k| k.retired_at.is_none())
            .count(),
        1
    );

    // Cutoff is exclusive; the active key is never deleted.
    assert_eq!(
        h.store
            .delete_signing_keys_retired_before(t(2_000))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        h.store
            .delete_signing_keys_retired_before(t(2_500))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        h.store.signing_keys().await.unwrap(),
        vec![k3.clone(), retired_k2]
    );
    assert_eq!(
        h.store
            .delete_signing_keys_retired_before(t(i64::MAX))
            .await
            .unwrap(),
        1
    );
    assert_eq!(h.store.signing_keys().await.unwrap(), vec![k3]);
}

pub(crate) async fn secret_or_insert_is_consistent_under_races(h: Harness) {
    let stores: [Arc<dyn Store>; 2] = [Arc::clone(&h.store), h.open_another().await];
    let mut tasks = JoinSet::new();
    for i in 0..20_u8 {
        let store = Arc::clone(&stores[usize::from(i % 2)]);
        tasks.spawn(async move {
            let candidate = vec![i; 32];
            store
                .secret_or_insert("refresh-master", &candidate)
                .await
                .unwrap()
        });
    }
    let mut seen = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        seen.push(joined.unwrap());
    }
    let first = seen[0].clone();
    assert!(
        seen.iter().all(|s| *s == first),
        "all callers get the same secret"
    );
    assert_eq!(first.len(), 32);
    assert!(
        first.iter().all(|b| *b == first[0]),
        "it is one of the candidates"
    );

    assert_eq!(
        h.store
            .secret_or_insert("refresh-master", &[0xff; 32])
            .await
            .unwrap(),
        first
    );
    // Names are independent.
    assert_eq!(
        h.store.secret_or_insert("other", &[7; 40]).await.unwrap(),
        vec![7; 40]
    );
}

pub(crate) async fn key_material_is_replaced_only_from_what_was_read(h: Harness) {
    let first = key("k1", 1_000);
    assert!(h.store.insert_first_signing_key(&first).await.unwrap());
    assert!(!h
        .store
        .replace_signing_key_material("k1", b"something else", b"sealed")
        .await
        .unwrap());
    assert!(!h
        .store
        .replace_signing_key_material("nope", &first.private_key, b"sealed")
        .await
        .unwrap());
    // Two replicas sealing at once: one write wins, the other finds it done.
    let other = h.open_another().await;
    let (a, b) = tokio::join!(
        h.store
            .replace_signing_key_material("k1", &first.private_key, b"sealed-a"),
        other.replace_signing_key_material("k1", &first.private_key, b"sealed-b"),
    );
    assert!(a.unwrap() ^ b.unwrap(), "exactly one replacement");
    let stored = h.store.signing_keys().await.unwrap();
    assert!(stored[0].private_key == b"sealed-a" || stored[0].private_key == b"sealed-b");
}

pub(crate) async fn revoking_a_key_deletes_it_and_logs_its_kid(h: Harness) {
    let first = key("k1", 1_000);
    assert!(h.store.insert_first_signing_key(&first).await.unwrap());
    // The active key cannot be revoked (the service rotates first).
    assert!(!h.store.revoke_signing_key("k1", t(9_000)).await.unwrap());
    h.store.rotate_signing_key(&key("k2", 2_000)).await.unwrap();
    assert!(h.store.revoke_signing_key("k1", t(9_000)).await.unwrap());
    assert!(!h.store.revoke_signing_key("k1", t(9_000)).await.unwrap());
    assert!(!h
        .store
        .revoke_signing_key("unknown", t(9_000))
        .await
        .unwrap());
    let kids: Vec<String> = h
        .store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, ["k2"]);
    let log = h.store.revocations_after(0, t(3_000), 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        log[0].revoked,
        latchkey_core::store::Revoked::Key("k1".to_owned())
    );
    assert_eq!(log[0].expires_at, t(9_000));
}
