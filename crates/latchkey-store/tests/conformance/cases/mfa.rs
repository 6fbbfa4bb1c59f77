//! The second factor: pending and confirmed TOTP records, spending TOTP steps and
//! recovery codes once (also under concurrency, also across store instances), login
//! challenges with their failure count, turning it off, and the session's auth methods.

use std::sync::Arc;

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::mfa::AuthMethods;
use latchkey_core::model::{Session, SessionId, User};
use latchkey_core::store::{
    CreateSessionOutcome, MfaChallenge, MfaCompletion, MfaProof, NewSession, Store,
    TotpConfirmation,
};

use crate::harness::{event, located, random_hash, stored_user, t, Harness};

fn codes(seed: u8) -> Vec<[u8; 32]> {
    (0..10).map(|i| [seed.wrapping_add(i); 32]).collect()
}

/// A user with a confirmed authenticator (last step 100) and recovery codes `codes(1)`.
async fn user_with_totp(store: &Arc<dyn Store>, email: &str) -> User {
    let user = stored_user(store, email).await;
    let enrolled = event(
        SecurityEventKind::MfaEnrolled,
        t(1_000),
        Some(user.id),
        None,
    );
    assert!(store
        .put_pending_totp(user.id, b"sealed-1", t(1_000), &enrolled)
        .await
        .unwrap());
    let confirmation = TotpConfirmation {
        user_id: user.id,
        sealed_secret: b"sealed-1".to_vec(),
        step: 100,
        recovery_codes: codes(1),
        now: t(2_000),
        event: event(
            SecurityEventKind::MfaConfirmed,
            t(2_000),
            Some(user.id),
            None,
        ),
    };
    assert!(store.confirm_totp(&confirmation).await.unwrap());
    user
}

fn challenge(user: &User, hash: u8, expires_at: i64) -> MfaChallenge {
    MfaChallenge {
        token_hash: [hash; 32],
        user_id: user.id,
        password_hash: user.password_hash.clone(),
        refresh_delivery: "body".to_owned(),
        created_at: t(3_000),
        expires_at: t(expires_at),
        failures: 0,
        used: false,
    }
}

pub(crate) async fn pending_totp_is_replaced_until_confirmed(h: Harness) {
    let user = stored_user(&h.store, "m1@example.com").await;
    let ev = event(
        SecurityEventKind::MfaEnrolled,
        t(1_000),
        Some(user.id),
        None,
    );
    assert!(h
        .store
        .put_pending_totp(user.id, b"a", t(1_000), &ev)
        .await
        .unwrap());
    assert!(h
        .store
        .put_pending_totp(user.id, b"b", t(1_500), &ev)
        .await
        .unwrap());
    let record = h.store.totp(user.id).await.unwrap().unwrap();
    assert_eq!(record.sealed_secret, b"b");
    assert_eq!(record.confirmed_at, None);

    // Confirming with the replaced secret does nothing.
    let mut confirmation = TotpConfirmation {
        user_id: user.id,
        sealed_secret: b"a".to_vec(),
        step: 7,
        recovery_codes: codes(1),
        now: t(2_000),
        event: event(
            SecurityEventKind::MfaConfirmed,
            t(2_000),
            Some(user.id),
            None,
        ),
    };
    assert!(!h.store.confirm_totp(&confirmation).await.unwrap());
    confirmation.sealed_secret = b"b".to_vec();
    assert!(h.store.confirm_totp(&confirmation).await.unwrap());
    assert!(!h.store.confirm_totp(&confirmation).await.unwrap());
    let record = h.store.totp(user.id).await.unwrap().unwrap();
    assert_eq!(
        (record.confirmed_at, record.last_step),
        (Some(t(2_000)), Some(7))
    );
    assert_eq!(h.store.unused_recovery_codes(user.id).await.unwrap(), 10);

    // An active authenticator is not replaced by a new enrolment.
    assert!(!h
        .store
        .put_pending_totp(user.id, b"c", t(3_000), &ev)
        .await
        .unwrap());
    let kinds: Vec<_> = h
        .store
        .recent_events(Some(user.id), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            SecurityEventKind::MfaConfirmed,
            SecurityEventKind::MfaEnrolled,
            SecurityEventKind::MfaEnrolled
        ]
    );
}

pub(crate) async fn a_totp_step_and_a_recovery_code_are_spent_once(h: Harness) {
    let user = user_with_totp(&h.store, "m2@example.com").await;
    let ev = event(
        SecurityEventKind::RecoveryCodesRegenerated,
        t(4_000),
        Some(user.id),
        None,
    );
    let replace = |proof: MfaProof, seed: u8| {
        let store = Arc::clone(&h.store);
        let ev = ev.clone();
        async move {
            store
                .replace_recovery_codes(user.id, &proof, &codes(seed), t(4_000), &ev)
                .await
                .unwrap()
        }
    };
    // Step 100 was accepted at confirmation: it and older steps are refused.
    assert_eq!(
        replace(MfaProof::TotpStep(100), 2).await,
        MfaCompletion::ProofRefused
    );
    assert_eq!(
        replace(MfaProof::TotpStep(99), 2).await,
        MfaCompletion::ProofRefused
    );
    assert_eq!(
        replace(MfaProof::TotpStep(101), 2).await,
        MfaCompletion::Completed
    );
    assert_eq!(
        replace(MfaProof::TotpStep(101), 3).await,
        MfaCompletion::ProofRefused
    );
    // The old set is void, the new one works once.
    assert_eq!(
        replace(MfaProof::RecoveryCode([1; 32]), 3).await,
        MfaCompletion::ProofRefused
    );
    assert_eq!(
        replace(MfaProof::RecoveryCode([2; 32]), 3).await,
        MfaCompletion::Completed
    );
    assert_eq!(
        replace(MfaProof::RecoveryCode([3; 32]), 4).await,
        MfaCompletion::Completed
    );
    assert_eq!(
        replace(MfaProof::RecoveryCode([3; 32]), 5).await,
        MfaCompletion::ProofRefused
    );
    assert_eq!(h.store.unused_recovery_codes(user.id).await.unwrap(), 10);

    // Another user's code is not this user's.
    let other = user_with_totp(&h.store, "m2b@example.com").await;
    let result = h
        .store
        .replace_recovery_codes(
            other.id,
            &MfaProof::RecoveryCode([12; 32]),
            &codes(9),
            t(5_000),
            &ev,
        )
        .await
        .unwrap();
    assert_eq!(result, MfaCompletion::ProofRefused);
}

pub(crate) async fn concurrent_logins_with_one_code_have_one_winner(h: Harness) {
    let user = user_with_totp(&h.store, "m3@example.com").await;
    let stores = [Arc::clone(&h.store), h.open_another().await];
    for (i, hash) in (10u8..30).enumerate() {
        let store = &stores[i % 2];
        store
            .insert_mfa_challenge(&challenge(&user, hash, 900_000))
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for (i, hash) in (10u8..30).enumerate() {
        let store = Arc::clone(&stores[i % 2]);
        tasks.push(tokio::spawn(async move {
            store
                .complete_mfa_challenge(&[hash; 32], &MfaProof::TotpStep(101), t(4_000), 5)
                .await
                .unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    let winners = outcomes
        .iter()
        .filter(|o| **o == MfaCompletion::Completed)
        .count();
    assert_eq!(winners, 1, "{outcomes:?}");
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, MfaCompletion::Completed | MfaCompletion::ProofRefused)));
}

pub(crate) async fn a_login_challenge_is_single_use_and_voided_by_failures(h: Harness) {
    let user = user_with_totp(&h.store, "m4@example.com").await;
    h.store
        .insert_mfa_challenge(&challenge(&user, 1, 10_000))
        .await
        .unwrap();
    let stored = h.store.mfa_challenge(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(
        (stored.user_id, stored.failures, stored.used),
        (user.id, 0, false)
    );
    assert_eq!(stored.refresh_delivery, "body");

    // Expired: gone.
    let late = h
        .store
        .complete_mfa_challenge(&[1; 32], &MfaProof::TotpStep(200), t(10_000), 5)
        .await
        .unwrap();
    assert_eq!(late, MfaCompletion::Gone);
    // A wrong proof leaves it open; the right one uses it up.
    let replayed = h
        .store
        .complete_mfa_challenge(&[1; 32], &MfaProof::TotpStep(100), t(4_000), 5)
        .await
        .unwrap();
    assert_eq!(replayed, MfaCompletion::ProofRefused);
    let done = h
        .store
        .complete_mfa_challenge(&[1; 32], &MfaProof::TotpStep(101), t(4_000), 5)
        .await
        .unwrap();
    assert_eq!(done, MfaCompletion::Completed);
    assert!(h.store.mfa_challenge(&[1; 32]).await.unwrap().unwrap().used);
    let again = h
        .store
        .complete_mfa_challenge(&[1; 32], &MfaProof::TotpStep(102), t(4_000), 5)
        .await
        .unwrap();
    assert_eq!(again, MfaCompletion::Gone);
    assert_eq!(
        h.store.count_mfa_challenge_failure(&[1; 32]).await.unwrap(),
        None
    );

    // Five failures void a challenge.
    h.store
        .insert_mfa_challenge(&challenge(&user, 2, 10_000))
        .await
        .unwrap();
    for n in 1..=5 {
        assert_eq!(
            h.store.count_mfa_challenge_failure(&[2; 32]).await.unwrap(),
            Some(n)
        );
    }
    let voided = h
        .store
        .complete_mfa_challenge(&[2; 32], &MfaProof::TotpStep(103), t(4_000), 5)
        .await
        .unwrap();
    assert_eq!(voided, MfaCompletion::Gone);
    assert_eq!(h.store.mfa_challenge(&[9; 32]).await.unwrap(), None);
}

pub(crate) async fn turning_mfa_off_spends_the_proof_and_clears_everything(h: Harness) {
    let user = user_with_totp(&h.store, "m5@example.com").await;
    h.store
        .insert_mfa_challenge(&challenge(&user, 5, 900_000))
        .await
        .unwrap();
    let ev = event(
        SecurityEventKind::MfaDisabled,
        t(5_000),
        Some(user.id),
        None,
    );
    let refused = h
        .store
        .delete_totp(user.id, Some(&MfaProof::TotpStep(50)), t(5_000), &ev)
        .await
        .unwrap();
    assert_eq!(refused, MfaCompletion::ProofRefused);
    assert!(h.store.totp(user.id).await.unwrap().is_some());
    let done = h
        .store
        .delete_totp(
            user.id,
            Some(&MfaProof::RecoveryCode([1; 32])),
            t(5_000),
            &ev,
        )
        .await
        .unwrap();
    assert_eq!(done, MfaCompletion::Completed);
    assert_eq!(h.store.totp(user.id).await.unwrap(), None);
    assert_eq!(h.store.unused_recovery_codes(user.id).await.unwrap(), 0);
    assert_eq!(h.store.mfa_challenge(&[5; 32]).await.unwrap(), None);
    let gone = h
        .store
        .delete_totp(user.id, None, t(6_000), &ev)
        .await
        .unwrap();
    assert_eq!(gone, MfaCompletion::Gone);

    // An admin reset (no proof) also clears a pending enrolment.
    let pending = stored_user(&h.store, "m5b@example.com").await;
    let enrolled = event(
        SecurityEventKind::MfaEnrolled,
        t(1_000),
        Some(pending.id),
        None,
    );
    h.store
        .put_pending_totp(pending.id, b"p", t(1_000), &enrolled)
        .await
        .unwrap();
    let reset = event(
        SecurityEventKind::MfaReset,
        t(6_000),
        Some(pending.id),
        None,
    );
    let outcome = h
        .store
        .delete_totp(pending.id, None, t(6_000), &reset)
        .await
        .unwrap();
    assert_eq!(outcome, MfaCompletion::Completed);
    let last = h.store.recent_events(Some(pending.id), 1).await.unwrap();
    assert_eq!(last[0].kind, SecurityEventKind::MfaReset);
}

pub(crate) async fn a_session_keeps_its_auth_methods(h: Harness) {
    let user = stored_user(&h.store, "m6@example.com").await;
    for methods in [AuthMethods::Password, AuthMethods::PasswordAndOtp] {
        let session = Session {
            id: SessionId::generate(),
            user_id: user.id,
            created_at: t(2_000),
            latest_generation: 0,
            revoked_at: None,
        };
        let first = random_hash();
        let new = NewSession {
            session: session.clone(),
            first_token: first.clone(),
            password_hash: user.password_hash.clone(),
            client_ip: None,
            user_agent: None,
            device: latchkey_core::device::Device::of(None, None),
            auth_methods: methods,
        };
        let created = h.store.create_session(&new).await.unwrap();
        assert!(matches!(created, CreateSessionOutcome::Created { .. }));
        let lookup = located(session.id, 0, first);
        let state = h.store.refresh_state(&lookup).await.unwrap().unwrap();
        assert_eq!(state.auth_methods, methods);
    }
}

pub(crate) async fn a_proof_is_spent_on_its_own_once(h: Harness) {
    let user = user_with_totp(&h.store, "spend@example.com").await;
    let ev = event(SecurityEventKind::MfaFailed, t(3_000), Some(user.id), None);
    let step = MfaProof::TotpStep(101);
    assert_eq!(
        h.store
            .spend_mfa_proof(user.id, &step, t(3_000), Some(&ev))
            .await
            .unwrap(),
        MfaCompletion::Completed
    );
    assert_eq!(
        h.store
            .spend_mfa_proof(user.id, &step, t(3_000), Some(&ev))
            .await
            .unwrap(),
        MfaCompletion::ProofRefused,
        "a step is spent once"
    );
    assert_eq!(
        h.store
            .spend_mfa_proof(user.id, &MfaProof::TotpStep(100), t(3_000), None)
            .await
            .unwrap(),
        MfaCompletion::ProofRefused,
        "an older step too"
    );
    let nobody = stored_user(&h.store, "nofactor@example.com").await;
    assert_eq!(
        h.store
            .spend_mfa_proof(nobody.id, &MfaProof::TotpStep(500), t(3_000), None)
            .await
            .unwrap(),
        MfaCompletion::Gone
    );
}
