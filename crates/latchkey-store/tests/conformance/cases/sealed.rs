//! Sealed values (TOTP secrets, queued mail payloads): listed, and replaced as
//! compare-and-sets in one transaction, so a value changed meanwhile is left alone and
//! two processes sealing again at once apply each replacement once.

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::store::{DeliveryAttempt, OutboxMail, Reseal, SealedField, SealedValue};

use crate::harness::{event, stored_user, t, Harness};

fn sorted(mut values: Vec<SealedValue>) -> Vec<SealedValue> {
    values.sort_by_key(|v| format!("{:?}", v.field));
    values
}

pub(crate) async fn sealed_values_are_listed_and_replaced_only_from_what_was_read(h: Harness) {
    let alice = stored_user(&h.store, "alice@example.com").await;
    let bob = stored_user(&h.store, "bob@example.com").await;
    for (user, secret) in [(&alice, b"alice-old"), (&bob, b"bob-old!!")] {
        let enrolled = event(
            SecurityEventKind::MfaEnrolled,
            t(1_000),
            Some(user.id),
            None,
        );
        assert!(h
            .store
            .put_pending_totp(user.id, secret, t(1_000), &enrolled)
            .await
            .unwrap());
    }
    for payload in [b"mail-one".to_vec(), b"mail-two".to_vec()] {
        let mail = OutboxMail {
            kind: "notice".to_owned(),
            payload,
            created_at: t(1_000),
        };
        h.store.enqueue_mail(&mail).await.unwrap();
    }
    // A settled mail has no payload left to list.
    let claimed = h.store.claim_mail(t(2_000), t(62_000), 10).await.unwrap();
    let sent = claimed
        .iter()
        .find(|m| m.payload == b"mail-two")
        .unwrap()
        .id;
    let kept = claimed
        .iter()
        .find(|m| m.payload == b"mail-one")
        .unwrap()
        .id;
    h.store
        .settle_mail(sent, &DeliveryAttempt::Sent, t(3_000))
        .await
        .unwrap();

    let values = sorted(h.store.sealed_values().await.unwrap());
    let mut expected = vec![
        SealedValue {
            field: SealedField::TotpSecret(alice.id),
            sealed: b"alice-old".to_vec(),
        },
        SealedValue {
            field: SealedField::TotpSecret(bob.id),
            sealed: b"bob-old!!".to_vec(),
        },
        SealedValue {
            field: SealedField::MailPayload(kept),
            sealed: b"mail-one".to_vec(),
        },
    ];
    expected = sorted(expected);
    assert_eq!(values, expected);

    // Bob's secret changes after it was read: his replacement is skipped, the others
    // are applied, all in one call.
    let enrolled = event(SecurityEventKind::MfaEnrolled, t(4_000), Some(bob.id), None);
    assert!(h
        .store
        .put_pending_totp(bob.id, b"bob-newer", t(4_000), &enrolled)
        .await
        .unwrap());
    let reseals: Vec<Reseal> = values
        .iter()
        .map(|v| Reseal {
            field: v.field,
            old: v.sealed.clone(),
            new: [b"resealed:".as_slice(), &v.sealed].concat(),
        })
        .collect();
    let other = h.open_another().await;
    let (first, second) = tokio::join!(h.store.reseal(&reseals), other.reseal(&reseals));
    assert_eq!(first.unwrap() + second.unwrap(), 2, "each applied once");
    assert_eq!(
        h.store.totp(alice.id).await.unwrap().unwrap().sealed_secret,
        b"resealed:alice-old"
    );
    assert_eq!(
        h.store.totp(bob.id).await.unwrap().unwrap().sealed_secret,
        b"bob-newer"
    );
    let queued = h.store.claim_mail(t(70_000), t(130_000), 10).await.unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].payload, b"resealed:mail-one");
    assert_eq!(h.store.reseal(&reseals).await.unwrap(), 0);
    assert_eq!(h.store.reseal(&[]).await.unwrap(), 0);
}
