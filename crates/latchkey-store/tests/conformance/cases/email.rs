//! E-mail: reset requests (known and unknown addresses), single-use tokens (also under
//! concurrency), verification and change of address, and the durable outbox.

use std::sync::Arc;

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::email::{EmailTokenHash, EmailTokenPurpose, StoredEmailToken};
use latchkey_core::model::{Email, User};
use latchkey_core::store::{
    DeliveryAttempt, EmailTokenEffect, EmailTokenOutcome, EmailTokenUse, NewEmailToken, OutboxMail,
    PasswordResetRequest, SessionRevocation, Store,
};
use uuid::Uuid;

use crate::harness::{event, stored_session, stored_user, t, Harness};

fn token_hash() -> EmailTokenHash {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    EmailTokenHash::from_bytes(bytes)
}

fn token(user: &User, purpose: EmailTokenPurpose, email: &str, at: i64) -> StoredEmailToken {
    StoredEmailToken {
        hash: token_hash(),
        user_id: user.id,
        purpose,
        email: Email::parse(email).unwrap(),
        created_at: t(at),
        expires_at: t(at + 1_800_000),
        used_at: None,
    }
}

fn mail(kind: &str, at: i64) -> OutboxMail {
    OutboxMail {
        kind: kind.to_owned(),
        payload: vec![1, 2, 3],
        created_at: t(at),
    }
}

async fn issue(store: &Arc<dyn Store>, token: &StoredEmailToken) {
    let new = NewEmailToken {
        token: token.clone(),
        mail: mail(token.purpose.as_str(), token.created_at.unix_millis()),
    };
    store.issue_email_token(&new).await.unwrap();
}

fn reset(user: &User, token: &StoredEmailToken, at: i64) -> EmailTokenUse {
    EmailTokenUse {
        hash: token.hash,
        purpose: EmailTokenPurpose::PasswordReset,
        user_id: user.id,
        now: t(at),
        effect: EmailTokenEffect::ResetPassword {
            new_hash: "$argon2id$new".to_owned(),
            revocation: SessionRevocation {
                now: t(at),
                access_tokens_until: t(at + 60_000),
                event: event(
                    SecurityEventKind::SessionRevoked,
                    t(at),
                    Some(user.id),
                    None,
                ),
            },
        },
        notice: Some(mail("password_changed", at)),
    }
}

fn verify(user: &User, token: &StoredEmailToken, effect: EmailTokenEffect) -> EmailTokenUse {
    EmailTokenUse {
        hash: token.hash,
        purpose: token.purpose,
        user_id: user.id,
        now: t(5_000),
        effect,
        notice: None,
    }
}

pub(crate) async fn password_reset_request_writes_a_token_only_for_a_known_address(h: Harness) {
    let user = stored_user(&h.store, "reset-known@example.com").await;
    let request = |email: &str| PasswordResetRequest {
        email: Email::parse(email).unwrap(),
        token: token(&user, EmailTokenPurpose::PasswordReset, email, 1_000),
        mail: mail("password_reset", 1_000),
    };
    let known = request("reset-known@example.com");
    assert_eq!(
        h.store.request_password_reset(&known).await.unwrap(),
        Some(user.id)
    );
    let stored = h
        .store
        .email_token(&known.token.hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, known.token);
    let unknown = request("nobody@example.com");
    assert_eq!(
        h.store.request_password_reset(&unknown).await.unwrap(),
        None
    );
    assert!(h
        .store
        .email_token(&unknown.token.hash)
        .await
        .unwrap()
        .is_none());
    // Only the known address's mail is due; the stand-in row is settled already.
    let due = h.store.claim_mail(t(2_000), t(62_000), 10).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].kind, "password_reset");
    assert_eq!(due[0].payload, vec![1, 2, 3]);
}

pub(crate) async fn a_reset_token_works_once_and_voids_the_others(h: Harness) {
    let user = stored_user(&h.store, "reset-once@example.com").await;
    let (session, _) = stored_session(&h.store, &user, t(500)).await;
    let first = token(
        &user,
        EmailTokenPurpose::PasswordReset,
        "reset-once@example.com",
        1_000,
    );
    let second = token(
        &user,
        EmailTokenPurpose::PasswordReset,
        "reset-once@example.com",
        1_100,
    );
    issue(&h.store, &first).await;
    issue(&h.store, &second).await;
    let outcome = h
        .store
        .use_email_token(&reset(&user, &first, 3_000))
        .await
        .unwrap();
    assert_eq!(
        outcome,
        EmailTokenOutcome::Applied {
            revoked: vec![session.id]
        }
    );
    let stored = h.store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, "$argon2id$new");
    assert_eq!(
        h.store.email_verified_at(user.id).await.unwrap(),
        Some(t(3_000))
    );
    assert!(h
        .store
        .session(session.id)
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());
    for used in [&first, &second] {
        assert_eq!(
            h.store
                .use_email_token(&reset(&user, used, 4_000))
                .await
                .unwrap(),
            EmailTokenOutcome::Invalid
        );
        assert_eq!(
            h.store
                .email_token(&used.hash)
                .await
                .unwrap()
                .unwrap()
                .used_at,
            Some(t(3_000))
        );
    }
    // The notice went into the outbox with the change.
    let kinds: Vec<String> = h
        .store
        .claim_mail(t(5_000), t(65_000), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.kind)
        .collect();
    assert!(kinds.contains(&"password_changed".to_owned()), "{kinds:?}");
}

pub(crate) async fn expired_or_foreign_tokens_change_nothing(h: Harness) {
    let user = stored_user(&h.store, "reset-expired@example.com").await;
    let other = stored_user(&h.store, "reset-other@example.com").await;
    let expired = token(
        &user,
        EmailTokenPurpose::PasswordReset,
        "reset-expired@example.com",
        1_000,
    );
    issue(&h.store, &expired).await;
    let late = expired.expires_at.unix_millis();
    assert_eq!(
        h.store
            .use_email_token(&reset(&user, &expired, late))
            .await
            .unwrap(),
        EmailTokenOutcome::Invalid
    );
    assert_eq!(
        h.store
            .use_email_token(&reset(&other, &expired, 2_000))
            .await
            .unwrap(),
        EmailTokenOutcome::Invalid
    );
    let wrong_purpose = EmailTokenUse {
        purpose: EmailTokenPurpose::VerifyEmail,
        ..reset(&user, &expired, 2_000)
    };
    assert_eq!(
        h.store.use_email_token(&wrong_purpose).await.unwrap(),
        EmailTokenOutcome::Invalid
    );
    let stored = h.store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, user.password_hash);
    assert!(h
        .store
        .email_token(&expired.hash)
        .await
        .unwrap()
        .unwrap()
        .used_at
        .is_none());
}

pub(crate) async fn concurrent_token_uses_have_one_winner(h: Harness) {
    let user = stored_user(&h.store, "reset-race@example.com").await;
    let tok = token(
        &user,
        EmailTokenPurpose::PasswordReset,
        "reset-race@example.com",
        1_000,
    );
    issue(&h.store, &tok).await;
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let store = h.store.clone();
            let use_ = reset(&user, &tok, 2_000);
            tokio::spawn(async move { store.use_email_token(&use_).await.unwrap() })
        })
        .collect();
    let mut winners = 0;
    for attempt in attempts {
        if matches!(attempt.await.unwrap(), EmailTokenOutcome::Applied { .. }) {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

pub(crate) async fn verification_and_change_of_address_apply_only_while_they_fit(h: Harness) {
    let user = stored_user(&h.store, "verify-me@example.com").await;
    let taken = stored_user(&h.store, "taken@example.com").await;
    assert_eq!(h.store.email_verified_at(user.id).await.unwrap(), None);
    let verify_tok = token(
        &user,
        EmailTokenPurpose::VerifyEmail,
        "verify-me@example.com",
        1_000,
    );
    let change_tok = token(
        &user,
        EmailTokenPurpose::ChangeEmail,
        "moved@example.com",
        1_000,
    );
    let clash_tok = token(
        &user,
        EmailTokenPurpose::ChangeEmail,
        "taken@example.com",
        1_000,
    );
    for tok in [&verify_tok, &change_tok] {
        issue(&h.store, tok).await;
    }
    // The account moves first: the verification link for the old address is void.
    assert_eq!(
        h.store
            .use_email_token(&verify(&user, &change_tok, EmailTokenEffect::ChangeAddress))
            .await
            .unwrap(),
        EmailTokenOutcome::Applied { revoked: vec![] }
    );
    let moved = h.store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(moved.email.as_str(), "moved@example.com");
    assert_eq!(
        h.store.email_verified_at(user.id).await.unwrap(),
        Some(t(5_000))
    );
    assert_eq!(
        h.store
            .use_email_token(&verify(&user, &verify_tok, EmailTokenEffect::VerifyAddress))
            .await
            .unwrap(),
        EmailTokenOutcome::Invalid
    );
    issue(&h.store, &clash_tok).await;
    assert_eq!(
        h.store
            .use_email_token(&verify(&user, &clash_tok, EmailTokenEffect::ChangeAddress))
            .await
            .unwrap(),
        EmailTokenOutcome::EmailTaken
    );
    assert!(h
        .store
        .email_token(&clash_tok.hash)
        .await
        .unwrap()
        .unwrap()
        .used_at
        .is_none());
    assert_eq!(
        h.store
            .user_by_id(taken.id)
            .await
            .unwrap()
            .unwrap()
            .email
            .as_str(),
        "taken@example.com"
    );
}

pub(crate) async fn the_outbox_leases_retries_records_failures_and_survives_reopening(
    mut h: Harness,
) {
    h.store
        .enqueue_mail(&mail("notice_a", 1_000))
        .await
        .unwrap();
    h.store
        .enqueue_mail(&mail("notice_b", 1_001))
        .await
        .unwrap();
    h.reopen().await;
    let claimed = h.store.claim_mail(t(2_000), t(62_000), 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].attempts, 0);
    // Leased: not handed out again before the lease ends.
    assert!(h
        .store
        .claim_mail(t(3_000), t(63_000), 10)
        .await
        .unwrap()
        .is_empty());
    let (a, b) = (claimed[0].id, claimed[1].id);
    h.store
        .settle_mail(a, &DeliveryAttempt::Sent, t(3_000))
        .await
        .unwrap();
    let retry = DeliveryAttempt::Retry {
        at: t(10_000),
        error: "connection refused".to_owned(),
    };
    h.store.settle_mail(b, &retry, t(3_000)).await.unwrap();
    assert!(h
        .store
        .claim_mail(t(9_999), t(70_000), 10)
        .await
        .unwrap()
        .is_empty());
    let again = h.store.claim_mail(t(10_000), t(70_000), 10).await.unwrap();
    assert_eq!((again.len(), again[0].id, again[0].attempts), (1, b, 1));
    let give_up = DeliveryAttempt::GiveUp {
        error: "mailbox unavailable".to_owned(),
    };
    h.store.settle_mail(b, &give_up, t(11_000)).await.unwrap();
    assert_eq!(
        h.store.failed_mail(10).await.unwrap(),
        vec![(b, "notice_b".to_owned(), "mailbox unavailable".to_owned())]
    );
    assert!(h
        .store
        .claim_mail(t(100_000), t(200_000), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(h.store.purge_email(t(100_000), t(50_000)).await.unwrap(), 2);
    assert!(h.store.failed_mail(10).await.unwrap().is_empty());
}
