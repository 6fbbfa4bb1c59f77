//! Registration in one store call: a fresh address gets the account with its event,
//! verification token and mail; a taken one gets only what the caller asked for
//! instead (an event for the owner, a notice at most once in a while), also when
//! registrations race.

use std::sync::Arc;

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::email::{EmailTokenHash, EmailTokenPurpose, StoredEmailToken};
use latchkey_core::model::User;
use latchkey_core::store::{
    NewEmailToken, OutboxMail, Registration, RegistrationOutcome, Store, TakenAddress,
};
use uuid::Uuid;

use crate::harness::{event, new_user, stored_user, t, Harness};

fn mail(kind: &str) -> OutboxMail {
    OutboxMail {
        kind: kind.to_owned(),
        payload: vec![1, 2, 3],
        created_at: t(1_000),
    }
}

fn registration(user: &User, if_taken: Option<TakenAddress>) -> Registration {
    let mut hash = [0u8; 32];
    hash[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    Registration {
        user: user.clone(),
        registered: event(
            SecurityEventKind::UserRegistered,
            t(1_000),
            Some(user.id),
            None,
        ),
        verification: NewEmailToken {
            token: StoredEmailToken {
                hash: EmailTokenHash::from_bytes(hash),
                user_id: user.id,
                purpose: EmailTokenPurpose::VerifyEmail,
                email: user.email.clone(),
                created_at: t(1_000),
                expires_at: t(90_000_000),
                used_at: None,
            },
            mail: mail("verify_email"),
        },
        if_taken,
    }
}

/// An attempt at `at` that queues its notice unless one was queued since `quiet_since`.
fn taken(at: i64, quiet_since: i64) -> TakenAddress {
    let mut attempt = event(SecurityEventKind::RegistrationAttempted, t(at), None, None);
    attempt.detail = None;
    TakenAddress {
        event: attempt,
        notice: mail("registration_attempted"),
        quiet_since: t(quiet_since),
    }
}

async fn queued_kinds(store: &Arc<dyn Store>) -> Vec<String> {
    let mut kinds: Vec<String> = store
        .claim_mail(t(2_000), t(62_000), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.kind)
        .collect();
    kinds.sort();
    kinds
}

async fn event_kinds(store: &Arc<dyn Store>, user: &User) -> Vec<&'static str> {
    let events = store.recent_events(Some(user.id), 100).await.unwrap();
    events.iter().map(|e| e.kind.as_str()).collect()
}

/// The details of the owner's `registration_attempted` events, oldest first.
async fn attempts(store: &Arc<dyn Store>, owner: &User) -> Vec<Option<String>> {
    let mut events = store.recent_events(Some(owner.id), 100).await.unwrap();
    events.retain(|e| e.kind == SecurityEventKind::RegistrationAttempted);
    events.reverse();
    events.into_iter().map(|e| e.detail).collect()
}

pub(crate) async fn a_registration_writes_the_account_or_only_what_a_taken_address_asks(
    h: Harness,
) {
    // A fresh address: the account, its event, its token and its mail.
    let fresh = new_user("fresh@example.com");
    let new = registration(&fresh, Some(taken(1_000, 0)));
    assert_eq!(
        h.store.register(&new).await.unwrap(),
        RegistrationOutcome::Created
    );
    assert_eq!(
        h.store.user_by_email(&fresh.email).await.unwrap(),
        Some(fresh.clone())
    );
    assert_eq!(event_kinds(&h.store, &fresh).await, ["user_registered"]);
    let token = h.store.email_token(&new.verification.token.hash).await;
    assert_eq!(token.unwrap(), Some(new.verification.token.clone()));
    assert_eq!(queued_kinds(&h.store).await, ["verify_email"]);

    // A taken address: no account, no token, no verification mail; the owner's event
    // and the notice.
    let owner = stored_user(&h.store, "owner@example.com").await;
    let mut intruder = new_user("owner@example.com");
    intruder.password_hash = "$argon2id$intruder".to_owned();
    let attempt = registration(&intruder, Some(taken(1_000, 0)));
    assert_eq!(
        h.store.register(&attempt).await.unwrap(),
        RegistrationOutcome::Taken { notified: true }
    );
    assert_eq!(h.store.user_by_id(intruder.id).await.unwrap(), None);
    assert_eq!(
        h.store.user_by_email(&owner.email).await.unwrap(),
        Some(owner.clone())
    );
    let token = h.store.email_token(&attempt.verification.token.hash).await;
    assert_eq!(token.unwrap(), None);
    let notified = Some(TakenAddress::NOTICE_QUEUED.to_owned());
    assert_eq!(
        attempts(&h.store, &owner).await,
        std::slice::from_ref(&notified)
    );
    assert_eq!(queued_kinds(&h.store).await, ["registration_attempted"]);

    // Within the quiet time: recorded, not mailed. After it: mailed again. With nothing
    // asked for a taken address: nothing written.
    let quiet = registration(&new_user("owner@example.com"), Some(taken(2_000, 1_000)));
    assert_eq!(
        h.store.register(&quiet).await.unwrap(),
        RegistrationOutcome::Taken { notified: false }
    );
    assert!(queued_kinds(&h.store).await.is_empty());
    let later = registration(&new_user("owner@example.com"), Some(taken(3_000, 1_001)));
    assert_eq!(
        h.store.register(&later).await.unwrap(),
        RegistrationOutcome::Taken { notified: true }
    );
    assert_eq!(queued_kinds(&h.store).await, ["registration_attempted"]);
    let silent = registration(&new_user("owner@example.com"), None);
    assert_eq!(
        h.store.register(&silent).await.unwrap(),
        RegistrationOutcome::Taken { notified: false }
    );
    assert_eq!(
        attempts(&h.store, &owner).await,
        [notified.clone(), None, notified]
    );
    assert!(queued_kinds(&h.store).await.is_empty());
    let all = h.store.recent_events(None, 100).await.unwrap();
    assert_eq!(all.len(), 4, "{all:?}");
}

pub(crate) async fn concurrent_registrations_of_one_address_make_one_account(h: Harness) {
    let other = h.open_another().await;
    let attempts: Vec<User> = (0..10).map(|_| new_user("race@example.com")).collect();
    let tasks: Vec<_> = attempts
        .iter()
        .enumerate()
        .map(|(i, user)| {
            let store = if i % 2 == 0 {
                h.store.clone()
            } else {
                other.clone()
            };
            let registration = registration(user, Some(taken(1_000, 0)));
            tokio::spawn(async move { store.register(&registration).await.unwrap() })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let count = |wanted: RegistrationOutcome| outcomes.iter().filter(|o| **o == wanted).count();
    assert_eq!(count(RegistrationOutcome::Created), 1, "{outcomes:?}");
    // One notice for the lot: each attempt decides after the one before it.
    let notified = RegistrationOutcome::Taken { notified: true };
    assert_eq!(count(notified), 1, "{outcomes:?}");
    let winner = h
        .store
        .user_by_email(&attempts[0].email)
        .await
        .unwrap()
        .unwrap();
    assert!(attempts.iter().any(|a| a.id == winner.id));
    let kinds = event_kinds(&h.store, &winner).await;
    assert_eq!(kinds.len(), 10, "{kinds:?}");
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "registration_attempted")
            .count(),
        9
    );
    assert_eq!(
        queued_kinds(&h.store).await,
        ["registration_attempted", "verify_email"]
    );
}
