//! Accounts: sessions with their devices, bulk revocation, admin changes to users with
//! the last-admin rule (also under concurrency), password changes, deletion.

use std::sync::Arc;

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::device::Device;
use latchkey_core::model::{Role, Session, SessionId, User};
use latchkey_core::store::{
    CreateSessionOutcome, NewSession, PasswordChange, Revoked, Rotation, SessionRevocation, Store,
    UserAccess, UserDeletion, UserUpdate, UserUpdateOutcome,
};
use latchkey_core::time::Timestamp;

use crate::harness::{event, new_user, random_hash, stored_session, stored_user, t, Harness};

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

fn login(user: &User, at: i64, ip: &str, user_agent: &str) -> NewSession {
    NewSession {
        session: Session {
            id: SessionId::generate(),
            user_id: user.id,
            created_at: t(at),
            latest_generation: 0,
            revoked_at: None,
        },
        first_token: random_hash(),
        password_hash: user.password_hash.clone(),
        client_ip: Some(ip.to_owned()),
        user_agent: Some(user_agent.to_owned()),
        device: Device::of(Some(user_agent), ip.parse().ok()),
        auth_methods: Default::default(),
    }
}

fn revocation(user: &User, at: i64) -> SessionRevocation {
    SessionRevocation {
        now: t(at),
        access_tokens_until: t(at + 60_000),
        event: event(
            SecurityEventKind::SessionRevoked,
            t(at),
            Some(user.id),
            None,
        ),
    }
}

async fn admin(store: &Arc<dyn Store>, email: &str) -> User {
    let mut user = new_user(email);
    user.roles = vec![Role::user(), Role::admin()];
    store.insert_user(&user).await.unwrap();
    user
}

fn access(user: &User) -> UserAccess {
    UserAccess {
        roles: user.roles.clone(),
        disabled_at: user.disabled_at,
    }
}

/// The sessions the revocation log revokes.
async fn revoked_in_log(store: &Arc<dyn Store>, now: Timestamp) -> Vec<SessionId> {
    let log = store.revocations_after(0, now, 1000).await.unwrap();
    log.into_iter()
        .filter_map(|e| match e.revoked {
            Revoked::Session(id) => Some(id),
            Revoked::AccessToken(_) | Revoked::Key(_) => None,
        })
        .collect()
}

pub(crate) async fn create_session_notes_the_device(h: Harness) {
    let user = stored_user(&h.store, "d1@example.com").await;
    let first = login(&user, 2_000, "198.51.100.4", FIREFOX);
    let CreateSessionOutcome::Created {
        roles,
        device_last_seen,
    } = h.store.create_session(&first).await.unwrap()
    else {
        panic!("session not created");
    };
    assert_eq!(roles, vec![Role::user()]);
    assert_eq!(device_last_seen, None, "a first login is from a new device");

    // Same browser, same /24: the device is known, last seen at the first login.
    let again = login(&user, 3_000, "198.51.100.99", FIREFOX);
    assert_eq!(
        h.store.create_session(&again).await.unwrap(),
        CreateSessionOutcome::Created {
            roles: vec![Role::user()],
            device_last_seen: Some(t(2_000)),
        }
    );
    // Another network: another device.
    let elsewhere = login(&user, 4_000, "192.0.2.1", FIREFOX);
    assert!(matches!(
        h.store.create_session(&elsewhere).await.unwrap(),
        CreateSessionOutcome::Created {
            device_last_seen: None,
            ..
        }
    ));

    let listed = h.store.user_sessions(user.id).await.unwrap();
    let ids: Vec<SessionId> = listed.iter().map(|s| s.session.id).collect();
    assert_eq!(
        ids,
        vec![elsewhere.session.id, again.session.id, first.session.id]
    );
    let newest = &listed[0];
    assert_eq!(newest.device, "Firefox on Linux");
    assert_eq!(newest.client_ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(newest.last_ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(newest.user_agent.as_deref(), Some(FIREFOX));
    assert_eq!(newest.last_used_at, t(4_000));
}

pub(crate) async fn create_session_refuses_a_changed_user(h: Harness) {
    let user = stored_user(&h.store, "d2@example.com").await;
    let mut stale = login(&user, 2_000, "198.51.100.4", FIREFOX);
    stale.password_hash = "an older hash".to_owned();
    assert_eq!(
        h.store.create_session(&stale).await.unwrap(),
        CreateSessionOutcome::UserChanged
    );
    let ghost = new_user("ghost@example.com");
    assert_eq!(
        h.store
            .create_session(&login(&ghost, 2_000, "198.51.100.4", FIREFOX))
            .await
            .unwrap(),
        CreateSessionOutcome::UserChanged
    );
    let disable = UserUpdate {
        id: user.id,
        expected: access(&user),
        new: UserAccess {
            roles: user.roles.clone(),
            disabled_at: Some(t(1_500)),
        },
        keep_an_admin: false,
        revoke_sessions: None,
    };
    assert!(matches!(
        h.store.update_user(&disable).await.unwrap(),
        UserUpdateOutcome::Applied { .. }
    ));
    assert_eq!(
        h.store
            .create_session(&login(&user, 2_000, "198.51.100.4", FIREFOX))
            .await
            .unwrap(),
        CreateSessionOutcome::UserChanged
    );
    assert!(h.store.user_sessions(user.id).await.unwrap().is_empty());
}

pub(crate) async fn rotation_keeps_the_last_address_and_use(h: Harness) {
    let user = stored_user(&h.store, "d3@example.com").await;
    let (session, first) = stored_session(&h.store, &user, t(2_000)).await;
    let rotation = Rotation {
        session_id: session.id,
        presented: first.hash.clone(),
        presented_generation: 0,
        successor: random_hash(),
        now: t(5_000),
        client_ip: Some("2001:db8::7".to_owned()),
    };
    h.store.rotate(&rotation).await.unwrap();
    let listed = h.store.user_sessions(user.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_used_at, t(5_000));
    assert_eq!(listed[0].last_ip.as_deref(), Some("2001:db8::7"));
    assert_eq!(listed[0].client_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(listed[0].session.latest_generation, 1);
}

pub(crate) async fn revoke_user_sessions_spares_the_one_kept(h: Harness) {
    let user = stored_user(&h.store, "d4@example.com").await;
    let other_user = stored_user(&h.store, "d4-other@example.com").await;
    let (keep, _) = stored_session(&h.store, &user, t(2_000)).await;
    let (a, _) = stored_session(&h.store, &user, t(2_100)).await;
    let (b, _) = stored_session(&h.store, &user, t(2_200)).await;
    let (theirs, _) = stored_session(&h.store, &other_user, t(2_300)).await;

    let mut revoked = h
        .store
        .revoke_user_sessions(user.id, Some(keep.id), &revocation(&user, 3_000))
        .await
        .unwrap();
    revoked.sort();
    let mut expected = vec![a.id, b.id];
    expected.sort();
    assert_eq!(revoked, expected);
    let live: Vec<SessionId> = h
        .store
        .user_sessions(user.id)
        .await
        .unwrap()
        .iter()
        .map(|s| s.session.id)
        .collect();
    assert_eq!(live, vec![keep.id]);
    assert_eq!(
        h.store.user_sessions(other_user.id).await.unwrap()[0]
            .session
            .id,
        theirs.id
    );
    let mut logged = revoked_in_log(&h.store, t(3_000)).await;
    logged.sort();
    assert_eq!(logged, expected);
    let events = h.store.recent_events(Some(user.id), 10).await.unwrap();
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .all(|e| e.kind == SecurityEventKind::SessionRevoked && e.session_id.is_some()));

    // Again, without exception: only the kept one is left to revoke.
    let rest = h
        .store
        .revoke_user_sessions(user.id, None, &revocation(&user, 4_000))
        .await
        .unwrap();
    assert_eq!(rest, vec![keep.id]);
    assert!(h.store.user_sessions(user.id).await.unwrap().is_empty());
}

pub(crate) async fn update_user_is_a_compare_and_set(h: Harness) {
    let user = stored_user(&h.store, "d5@example.com").await;
    let (session, _) = stored_session(&h.store, &user, t(2_000)).await;
    let editor = Role::parse("editor").unwrap();
    let promote = UserUpdate {
        id: user.id,
        expected: access(&user),
        new: UserAccess {
            roles: vec![editor.clone(), Role::user()],
            disabled_at: None,
        },
        keep_an_admin: false,
        revoke_sessions: None,
    };
    assert_eq!(
        h.store.update_user(&promote).await.unwrap(),
        UserUpdateOutcome::Applied { revoked: vec![] }
    );
    // Decided on the old roles: refused.
    assert_eq!(
        h.store.update_user(&promote).await.unwrap(),
        UserUpdateOutcome::Conflict
    );
    let stored = h.store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(stored.roles, vec![editor, Role::user()]);
    assert!(h.store.user_sessions(user.id).await.unwrap().len() == 1);

    let disable = UserUpdate {
        id: user.id,
        // Same roles in another order still match.
        expected: UserAccess {
            roles: vec![Role::user(), Role::parse("editor").unwrap()],
            disabled_at: None,
        },
        new: UserAccess {
            roles: stored.roles.clone(),
            disabled_at: Some(t(3_000)),
        },
        keep_an_admin: false,
        revoke_sessions: Some(revocation(&user, 3_000)),
    };
    assert_eq!(
        h.store.update_user(&disable).await.unwrap(),
        UserUpdateOutcome::Applied {
            revoked: vec![session.id]
        }
    );
    let stored = h.store.user_by_id(user.id).await.unwrap().unwrap();
    assert_eq!(stored.disabled_at, Some(t(3_000)));
    assert_eq!(revoked_in_log(&h.store, t(3_000)).await, vec![session.id]);

    let ghost = UserUpdate {
        id: new_user("nobody@example.com").id,
        ..disable
    };
    assert_eq!(
        h.store.update_user(&ghost).await.unwrap(),
        UserUpdateOutcome::Conflict
    );
}

pub(crate) async fn the_last_enabled_admin_is_kept(h: Harness) {
    let root = admin(&h.store, "root@example.com").await;
    let demote = |who: &User| UserUpdate {
        id: who.id,
        expected: access(who),
        new: UserAccess {
            roles: vec![Role::user()],
            disabled_at: None,
        },
        keep_an_admin: true,
        revoke_sessions: Some(revocation(who, 2_000)),
    };
    assert_eq!(
        h.store.update_user(&demote(&root)).await.unwrap(),
        UserUpdateOutcome::LastAdmin
    );
    let deletion = UserDeletion {
        id: root.id,
        keep_an_admin: true,
        revocation: revocation(&root, 2_000),
    };
    assert_eq!(
        h.store.delete_user(&deletion).await.unwrap(),
        UserUpdateOutcome::LastAdmin
    );
    // A disabled admin does not count.
    let mut sleeping = new_user("sleeping@example.com");
    sleeping.roles = vec![Role::admin()];
    sleeping.disabled_at = Some(t(500));
    h.store.insert_user(&sleeping).await.unwrap();
    assert_eq!(
        h.store.update_user(&demote(&root)).await.unwrap(),
        UserUpdateOutcome::LastAdmin
    );
    // With another enabled admin, it goes through.
    let _second = admin(&h.store, "second@example.com").await;
    assert!(matches!(
        h.store.update_user(&demote(&root)).await.unwrap(),
        UserUpdateOutcome::Applied { .. }
    ));
    assert_eq!(
        h.store.user_by_id(root.id).await.unwrap().unwrap().roles,
        vec![Role::user()]
    );
}

pub(crate) async fn concurrent_demotions_leave_an_admin(h: Harness) {
    for round in 0..5 {
        let a = admin(&h.store, &format!("a{round}@example.com")).await;
        let b = admin(&h.store, &format!("b{round}@example.com")).await;
        // Everyone else steps down first, so a and b are the only admins.
        let others = h.store.list_users(None, 100).await.unwrap();
        for other in others.iter().filter(|u| u.id != a.id && u.id != b.id) {
            if other.is_active_admin() {
                let step_down = UserUpdate {
                    id: other.id,
                    expected: access(other),
                    new: UserAccess {
                        roles: vec![],
                        disabled_at: None,
                    },
                    keep_an_admin: true,
                    revoke_sessions: None,
                };
                h.store.update_user(&step_down).await.unwrap();
            }
        }
        let second_store = h.open_another().await;
        let demote = |who: &User| UserUpdate {
            id: who.id,
            expected: access(who),
            new: UserAccess {
                roles: vec![],
                disabled_at: Some(t(2_000)),
            },
            keep_an_admin: true,
            revoke_sessions: None,
        };
        let (ua, ub) = (demote(&a), demote(&b));
        let (first, second) = tokio::join!(h.store.update_user(&ua), second_store.update_user(&ub));
        let outcomes = [first.unwrap(), second.unwrap()];
        let applied = outcomes
            .iter()
            .filter(|o| matches!(o, UserUpdateOutcome::Applied { .. }))
            .count();
        assert_eq!(applied, 1, "round {round}: {outcomes:?}");
        assert!(outcomes.contains(&UserUpdateOutcome::LastAdmin));
        let admins = h
            .store
            .list_users(None, 100)
            .await
            .unwrap()
            .into_iter()
            .filter(User::is_active_admin)
            .count();
        assert_eq!(admins, 1);
    }
}

pub(crate) async fn delete_user_takes_sessions_and_keeps_events(h: Harness) {
    let user = stored_user(&h.store, "d7@example.com").await;
    let (session, first) = stored_session(&h.store, &user, t(2_000)).await;
    h.store
        .record_event(&event(
            SecurityEventKind::LoginSucceeded,
            t(2_000),
            Some(user.id),
            None,
        ))
        .await
        .unwrap();
    let deletion = UserDeletion {
        id: user.id,
        keep_an_admin: false,
        revocation: revocation(&user, 3_000),
    };
    assert_eq!(
        h.store.delete_user(&deletion).await.unwrap(),
        UserUpdateOutcome::Applied {
            revoked: vec![session.id]
        }
    );
    assert_eq!(h.store.user_by_id(user.id).await.unwrap(), None);
    assert_eq!(h.store.session(session.id).await.unwrap(), None);
    assert_eq!(h.store.refresh_state(&first).await.unwrap(), None);
    assert_eq!(revoked_in_log(&h.store, t(3_000)).await, vec![session.id]);
    let kinds: Vec<SecurityEventKind> = h
        .store
        .recent_events(Some(user.id), 10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        vec![
            SecurityEventKind::SessionRevoked,
            SecurityEventKind::LoginSucceeded
        ]
    );
    // The address is free again; deleting twice finds nobody.
    stored_user(&h.store, "d7@example.com").await;
    assert_eq!(
        h.store.delete_user(&deletion).await.unwrap(),
        UserUpdateOutcome::Conflict
    );
}

pub(crate) async fn change_password_revokes_the_other_sessions(h: Harness) {
    let user = stored_user(&h.store, "d8@example.com").await;
    let (current, _) = stored_session(&h.store, &user, t(2_000)).await;
    let (other, _) = stored_session(&h.store, &user, t(2_100)).await;
    let change = PasswordChange {
        id: user.id,
        expected_hash: user.password_hash.clone(),
        new_hash: "new hash".to_owned(),
        keep_session: Some(current.id),
        revocation: revocation(&user, 3_000),
    };
    assert_eq!(
        h.store.change_password(&change).await.unwrap(),
        UserUpdateOutcome::Applied {
            revoked: vec![other.id]
        }
    );
    assert_eq!(
        h.store
            .user_by_id(user.id)
            .await
            .unwrap()
            .unwrap()
            .password_hash,
        "new hash"
    );
    // Decided on the old hash: refused, nothing revoked.
    assert_eq!(
        h.store.change_password(&change).await.unwrap(),
        UserUpdateOutcome::Conflict
    );
    let live: Vec<SessionId> = h
        .store
        .user_sessions(user.id)
        .await
        .unwrap()
        .iter()
        .map(|s| s.session.id)
        .collect();
    assert_eq!(live, vec![current.id]);
    // A login checked against the old hash no longer makes a session.
    assert_eq!(
        h.store
            .create_session(&login(&user, 4_000, "198.51.100.4", FIREFOX))
            .await
            .unwrap(),
        CreateSessionOutcome::UserChanged
    );
}
