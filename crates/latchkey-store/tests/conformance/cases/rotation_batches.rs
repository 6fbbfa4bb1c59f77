//! Rotations and reads that arrive together (both backends serve the waiting ones as a
//! batch): each gets its own answer, and a conflict in a batch spoils no other rotation.

use std::sync::Arc;

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::refresh::RefreshTokenLookup;
use latchkey_core::store::{RotateOutcome, Rotation, Store};
use tokio::task::JoinSet;

use crate::harness::{event, random_hash, stored_session, stored_user, successor_of, t, Harness};

/// What each rotation of the batch is, and so what it must come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The session's current token: rotates.
    Current,
    /// A generation the session is not at: conflicts.
    WrongGeneration,
    /// A hash the session does not hold: conflicts.
    UnknownToken,
    /// A revoked session's token: conflicts.
    Revoked,
}

pub(crate) async fn a_conflict_in_a_batch_spoils_no_other_rotation(h: Harness) {
    let user = stored_user(&h.store, "batch@example.com").await;
    let kinds = [
        Kind::Current,
        Kind::WrongGeneration,
        Kind::UnknownToken,
        Kind::Revoked,
    ];
    let mut attempts: Vec<(Kind, Rotation, RefreshTokenLookup)> = Vec::new();
    for i in 0..40 {
        let kind = kinds[i % kinds.len()];
        let (session, token) = stored_session(&h.store, &user, t(2_000)).await;
        if kind == Kind::Revoked {
            let ev = event(
                SecurityEventKind::SessionRevoked,
                t(2_500),
                Some(user.id),
                Some(session.id),
            );
            h.store
                .revoke_session(session.id, t(2_500), t(9_000), &ev)
                .await
                .unwrap();
        }
        let (presented, generation) = match kind {
            Kind::WrongGeneration => (token.hash.clone(), 1),
            Kind::UnknownToken => (random_hash(), 0),
            Kind::Current | Kind::Revoked => (token.hash.clone(), 0),
        };
        let rotation = Rotation {
            session_id: session.id,
            presented,
            presented_generation: generation,
            successor: random_hash(),
            now: t(3_000),
            client_ip: Some(format!("192.0.2.{i}")),
        };
        let successor = successor_of(&rotation);
        attempts.push((kind, rotation, successor));
    }

    // All at once, so they wait together and go in as few batches as the store makes.
    let mut tasks = JoinSet::new();
    for (i, (_, rotation, _)) in attempts.iter().enumerate() {
        let store: Arc<dyn Store> = Arc::clone(&h.store);
        let rotation = rotation.clone();
        tasks.spawn(async move { (i, store.rotate(&rotation).await) });
    }
    let mut outcomes = vec![None; attempts.len()];
    while let Some(joined) = tasks.join_next().await {
        let (i, outcome) = joined.expect("task panicked");
        outcomes[i] = Some(outcome.expect("a rotation failed instead of conflicting"));
    }

    // The successors read all at once too: each answer is its own lookup's.
    let mut reads = JoinSet::new();
    for (i, (_, _, successor)) in attempts.iter().enumerate() {
        let store: Arc<dyn Store> = Arc::clone(&h.store);
        let successor = successor.clone();
        reads.spawn(async move { (i, store.refresh_state(&successor).await) });
    }
    let mut states = vec![None; attempts.len()];
    while let Some(joined) = reads.join_next().await {
        let (i, state) = joined.expect("task panicked");
        states[i] = state.expect("a read failed");
    }

    for (((kind, rotation, _), outcome), stored) in attempts.iter().zip(outcomes).zip(states) {
        if let Some(state) = &stored {
            assert_eq!(
                state.session.id, rotation.session_id,
                "another lookup's answer"
            );
        }
        if *kind == Kind::Current {
            assert_eq!(outcome, Some(RotateOutcome::Rotated), "{kind:?}");
            let state = stored.expect("the successor is stored");
            assert_eq!(state.session.latest_generation, 1);
            assert_eq!(state.token.issued_at, t(3_000));
        } else {
            assert_eq!(outcome, Some(RotateOutcome::Conflict), "{kind:?}");
            assert!(stored.is_none(), "{kind:?}: no successor stored");
        }
    }
}
