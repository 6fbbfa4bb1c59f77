//! Sessions: creation, the rotation compare-and-set (also under concurrency), revocation.

use std::sync::Arc;

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::model::{RefreshTokenRecord, Role, Session, SessionId};
use latchkey_core::refresh::RefreshTokenLookup;
use latchkey_core::store::{RevocationEntry, Revoked, RotateOutcome, Rotation, Store};
use tokio::task::JoinSet;

use crate::harness::{
    event, located, random_hash, stored_session, stored_user, successor_of, t, Harness,
};

fn rotation(
    session_id: SessionId,
    presented: &RefreshTokenLookup,
    generation: u32,
    now: i64,
) -> Rotation {
    Rotation {
        session_id,
        presented: presented.hash.clone(),
        presented_generation: generation,
        successor: random_hash(),
        now: t(now),
        client_ip: None,
    }
}

/// Run `rotations` concurrently, spread round-robin over `stores`; return the outcomes.
async fn rotate_concurrently(
    stores: &[Arc<dyn Store>],
    rotations: Vec<Rotation>,
) -> Vec<RotateOutcome> {
    let mut tasks = JoinSet::new();
    for (i, rotation) in rotations.into_iter().enumerate() {
        let store = Arc::clone(&stores[i % stores.len()]);
        tasks.spawn(async move { store.rotate(&rotation).await });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined.expect("task panicked") {
            Ok(outcome) => outcomes.push(outcome),
            Err(err) => panic!("a concurrent rotation failed instead of conflicting: {err:?}"),
        }
    }
    outcomes
}

/// Check that exactly one of `attempts` won and that only its successor is stored.
async fn assert_one_winner(
    store: &Arc<dyn Store>,
    stores: &[Arc<dyn Store>],
    first: &RefreshTokenLookup,
    session_id: SessionId,
) {
    let attempts: Vec<Rotation> = (0..50)
        .map(|_| rotation(session_id, first, 0, 5_000))
        .collect();
    let successors: Vec<RefreshTokenLookup> = attempts.iter().map(successor_of).collect();
    let outcomes = rotate_concurrently(stores, attempts).await;
    let rotated = outcomes
        .iter()
        .filter(|o| **o == RotateOutcome::Rotated)
        .count();
    let conflicts = outcomes
        .iter()
        .filter(|o| **o == RotateOutcome::Conflict)
        .count();
    assert_eq!((rotated, conflicts), (1, 49));

    let mut stored = 0;
    for successor in &successors {
        if let Some((record, session)) = token_and_session(store, successor).await {
            stored += 1;
            assert_eq!(record.generation, 1);
            assert_eq!(session.latest_generation, 1);
        }
    }
    assert_eq!(stored, 1, "exactly the winner's successor is stored");
    let (spent, _) = token_and_session(store, first).await.unwrap();
    assert_eq!(spent.spent_at, Some(t(5_000)));
}

/// The stored token `lookup` finds and its session.
async fn token_and_session(
    store: &Arc<dyn Store>,
    lookup: &RefreshTokenLookup,
) -> Option<(RefreshTokenRecord, Session)> {
    let state = store.refresh_state(lookup).await.unwrap()?;
    Some((state.token, state.session))
}

pub(crate) async fn refresh_state_carries_the_current_roles(h: Harness) {
    let user = stored_user(&h.store, "roles@example.com").await;
    let (_, first) = stored_session(&h.store, &user, t(2_000)).await;
    let admin = vec![Role::admin(), Role::user()];
    assert!(h.store.set_user_roles(user.id, &admin).await.unwrap());
    let state = h.store.refresh_state(&first).await.unwrap().unwrap();
    assert_eq!(state.roles, admin);
}

pub(crate) async fn create_session_and_refresh_state(h: Harness) {
    let user = stored_user(&h.store, "s1@example.com").await;
    let (session, first) = stored_session(&h.store, &user, t(2_000)).await;

    let (record, loaded) = token_and_session(&h.store, &first).await.unwrap();
    assert_eq!(
        record,
        RefreshTokenRecord {
            hash: first.hash.clone(),
            session_id: session.id,
            generation: 0,
            issued_at: t(2_000),
            spent_at: None,
        }
    );
    assert_eq!(loaded, session);
    assert_eq!(
        h.store.session(session.id).await.unwrap(),
        Some(session.clone())
    );
    let state = h.store.refresh_state(&first).await.unwrap().unwrap();
    assert_eq!(
        state.roles, user.roles,
        "the user's roles come with the state"
    );

    // Found only at its place and with its hash.
    for (generation, hash) in [(0, random_hash()), (1, first.hash.clone())] {
        let elsewhere = located(session.id, generation, hash);
        assert_eq!(h.store.refresh_state(&elsewhere).await.unwrap(), None);
    }
    let other_session = located(SessionId::generate(), 0, first.hash.clone());
    assert_eq!(h.store.refresh_state(&other_session).await.unwrap(), None);
    // Without a locator only a token stored before tokens carried one is found.
    let by_hash_alone = RefreshTokenLookup {
        locator: None,
        hash: first.hash.clone(),
    };
    assert_eq!(h.store.refresh_state(&by_hash_alone).await.unwrap(), None);
    assert_eq!(h.store.session(SessionId::generate()).await.unwrap(), None);
}

pub(crate) async fn rotate_spends_and_issues_successor(h: Harness) {
    let user = stored_user(&h.store, "s2@example.com").await;
    let (session, first) = stored_session(&h.store, &user, t(2_000)).await;

    let r1 = rotation(session.id, &first, 0, 3_000);
    assert_eq!(h.store.rotate(&r1).await.unwrap(), RotateOutcome::Rotated);

    let (old, after) = token_and_session(&h.store, &first).await.unwrap();
    assert_eq!(old.spent_at, Some(t(3_000)));
    assert_eq!(old.generation, 0);
    assert_eq!(after.latest_generation, 1);
    assert_eq!(after.revoked_at, None);
    assert_eq!(after.created_at, t(2_000));

    let (new, _) = token_and_session(&h.store, &successor_of(&r1))
        .await
        .unwrap();
    assert_eq!(
        new,
        RefreshTokenRecord {
            hash: r1.successor.clone(),
            session_id: session.id,
            generation: 1,
            issued_at: t(3_000),
            spent_at: None,
        }
    );

    let r2 = rotation(session.id, &successor_of(&r1), 1, 4_000);
    assert_eq!(h.store.rotate(&r2).await.unwrap(), RotateOutcome::Rotated);
    assert_eq!(
        h.store
            .session(session.id)
            .await
            .unwrap()
            .unwrap()
            .latest_generation,
        2
    );
    let (newest, _) = token_and_session(&h.store, &successor_of(&r2))
        .await
        .unwrap();
    assert_eq!(newest.generation, 2);
}

pub(crate) async fn rotate_same_token_twice_conflicts(h: Harness) {
    let user = stored_user(&h.store, "s3@example.com").await;
    let (session, first) = stored_session(&h.store, &user, t(2_000)).await;

    let r = rotation(session.id, &first, 0, 3_000);
    assert_eq!(h.store.rotate(&r).await.unwrap(), RotateOutcome::Rotated);
    // The very same request again (same successor), then with another successor.
    assert_eq!(h.store.rotate(&r).await.unwrap(), RotateOutcome::Conflict);
    let other = rotation(session.id, &first, 0, 3_500);
    assert_eq!(
        h.store.rotate(&other).await.unwrap(),
        RotateOutcome::Conflict
    );

    // Nothing changed: the first spend time stays, the loser's successor is unknown.
    let (spent, s) = token_and_session(&h.store, &first).await.unwrap();
    assert_eq!(spent.spent_at, Some(t(3_000)));
    assert_eq!(s.latest_generation, 1);
    assert_eq!(
        h.store.refresh_state(&successor_of(&other)).await.unwrap(),
        None
    );
}

pub(crate) async fn rotate_with_wrong_generation_or_session_conflicts(h: Harness) {
    let user = stored_user(&h.store, "s4@example.com").await;
    let (session, first) = stored_session(&h.store, &user, t(2_000)).await;
    let (other_session, other_first) = stored_session(&h.store, &user, t(2_000)).await;

    // Claimed generation does not match the session's latest.
    let wrong_generation = rotation(session.id, &first, 1, 3_000);
    assert_eq!(
        h.store.rotate(&wrong_generation).await.unwrap(),
        RotateOutcome::Conflict
    );
    // A token presented for a session it does not belong to.
    let wrong_session = rotation(session.id, &other_first, 0, 3_000);
    assert_eq!(
        h.store.rotate(&wrong_session).await.unwrap(),
        RotateOutcome::Conflict
    );
    // An unknown token, an unknown session.
    let unknown = rotation(session.id, &located(session.id, 0, random_hash()), 0, 3_000);
    assert_eq!(
        h.store.rotate(&unknown).await.unwrap(),
        RotateOutcome::Conflict
    );
    let no_session = rotation(SessionId::generate(), &first, 0, 3_000);
    assert_eq!(
        h.store.rotate(&no_session).await.unwrap(),
        RotateOutcome::Conflict
    );

    for (hash, id) in [(&first, session.id), (&other_first, other_session.id)] {
        let (record, s) = token_and_session(&h.store, hash).await.unwrap();
        assert_eq!(record.spent_at, None);
        assert_eq!(s.id, id);
        assert_eq!(s.latest_generation, 0);
    }
}

pub(crate) async fn concurrent_rotations_have_one_winner(h: Harness) {
    let user = stored_user(&h.store, "s5@example.com").await;
    let (session, first) = stored_session(&h.store, &user, t(2_000)).await;
    let stores = [Arc::clone(&h.store)];
    assert_one_winner(&h.store, &stores, &first, session.id).await;
}

pub(crate) async fn concurrent_rotations_across_store_instances_have_one_winner(h: Harness) {
    let user = stored_user(&h.store, "s6@example.com").await;
    let (session, first) = stored_session(&h.store, &user, t(2_000)).await;
    let stores = [Arc::clone(&h.store), h.open_another().await];
    assert_one_winner(&h.store, &stores, &first, session.id).await;

    // Independent families rotated concurrently through both instances all succeed.
    let mut rotations = Vec::new();
    for _ in 0..20 {
        let (s, token) = stored_session(&h.store, &user, t(2_000)).await;
        rotations.push(rotation(s.id, &token, 0, 6_000));
    }
    let outcomes = rotate_concurrently(&stores, rotations).await;
    assert!(
        outcomes.iter().all(|o| *o == RotateOutcome::Rotated),
        "{outcomes:?}"
    );
}

pub(crate) async fn rotate_on_revoked_session_conflicts(h: Harness) {
    let user = stored_user(&h.store, "s7@example.com").await;
    let (session, first) = stored_session(&h.store, &user, t(2_000)).await;
    let ev = event(
        SecurityEventKind::SessionRevoked,
        t(2_500),
        Some(user.id),
        Some(session.id),
    );
    assert!(h
        .store
        .revoke_session(session.id, t(2_500), t(9_000), &ev)
        .await
        .unwrap());

    let r = rotation(session.id, &first, 0, 3_000);
    assert_eq!(h.store.rotate(&r).await.unwrap(), RotateOutcome::Conflict);
    let (record, s) = token_and_session(&h.store, &first).await.unwrap();
    assert_eq!(record.spent_at, None);
    assert_eq!(s.revoked_at, Some(t(2_500)));
    assert_eq!(s.latest_generation, 0);
    assert_eq!(
        h.store.refresh_state(&successor_of(&r)).await.unwrap(),
        None
    );
}

pub(crate) async fn revoke_session_is_idempotent_and_recorded_once(h: Harness) {
    let user = stored_user(&h.store, "s8@example.com").await;
    let (session, _) = stored_session(&h.store, &user, t(2_000)).await;
    let ev = event(
        SecurityEventKind::Logout,
        t(3_000),
        Some(user.id),
        Some(session.id),
    );

    assert!(h
        .store
        .revoke_session(session.id, t(3_000), t(9_000), &ev)
        .await
        .unwrap());
    let later = event(
        SecurityEventKind::Logout,
        t(4_000),
        Some(user.id),
        Some(session.id),
    );
    assert!(!h
        .store
        .revoke_session(session.id, t(4_000), t(10_000), &later)
        .await
        .unwrap());

    let stored = h.store.session(session.id).await.unwrap().unwrap();
    assert_eq!(stored.revoked_at, Some(t(3_000)));

    let log = h.store.revocations_after(0, t(3_000), 100).await.unwrap();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0].revoked, Revoked::Session(session.id));
    assert_eq!(log[0].expires_at, t(9_000));

    let events = h.store.recent_events(Some(user.id), 100).await.unwrap();
    assert_eq!(events, vec![ev]);

    // Unknown sessions: false, nothing recorded.
    let ghost = SessionId::generate();
    let ghost_ev = event(
        SecurityEventKind::SessionRevoked,
        t(5_000),
        None,
        Some(ghost),
    );
    assert!(!h
        .store
        .revoke_session(ghost, t(5_000), t(9_000), &ghost_ev)
        .await
        .unwrap());
    assert_eq!(
        h.store.revocations_after(0, t(0), 100).await.unwrap().len(),
        1
    );
    assert_eq!(h.store.recent_events(None, 100).await.unwrap().len(), 1);
}

pub(crate) async fn concurrent_revocations_record_once(h: Harness) {
    let user = stored_user(&h.store, "s9@example.com").await;
    let (session, _) = stored_session(&h.store, &user, t(2_000)).await;
    let stores = [Arc::clone(&h.store), h.open_another().await];

    let mut tasks = JoinSet::new();
    for i in 0..20_i64 {
        let store = Arc::clone(&stores[usize::from(i % 2 == 0)]);
        let ev = event(
            SecurityEventKind::SessionRevoked,
            t(3_000 + i),
            Some(user.id),
            Some(session.id),
        );
        tasks.spawn(async move {
            store
                .revoke_session(session.id, t(3_000 + i), t(9_000), &ev)
                .await
        });
    }
    let mut won = 0;
    while let Some(joined) = tasks.join_next().await {
        if joined.unwrap().unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    let log: Vec<RevocationEntry> = h.store.revocations_after(0, t(0), 100).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        h.store
            .recent_events(Some(user.id), 100)
            .await
            .unwrap()
            .len(),
        1
    );
}
