//! Model-based test of refresh rotation: random sequences of logins (fresh and with a
//! stale password), refreshes of the newest token, replays of older ones (inside and
//! outside the grace window), forged tokens, logouts, logout-all, password changes and
//! clock advances, applied both to a small reference model of the rotation rules and to
//! the real store driven the way the service drives it (`refresh_state`, then
//! `latchkey_core::rotation::decide` at an explicit time, then `rotate` or
//! `revoke_session`). Every answer must agree, on SQLite (FULL and NORMAL) and
//! PostgreSQL.
//!
//! `PROPTEST_CASES` sets the number of sequences per backend (default 64); for a long
//! run: `PROPTEST_CASES=5000 cargo test -p latchkey-store --test model --release`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[allow(dead_code, unreachable_pub)]
#[path = "conformance/harness.rs"]
mod harness;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use latchkey_core::audit::SecurityEventKind;
use latchkey_core::model::{SessionId, User};
use latchkey_core::refresh::RefreshTokenHash;
use latchkey_core::rotation::{decide, RefreshRejection, RotationDecision, RotationPolicy};
use latchkey_core::store::{
    CreateSessionOutcome, NewSession, PasswordChange, RotateOutcome, Rotation, SessionRevocation,
    Store, UserUpdateOutcome,
};
use latchkey_core::time::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use harness::{event, located, new_user, random_hash, t, Harness};

const SEC: i64 = 1000;
const POLICY: RotationPolicy = RotationPolicy {
    idle_ttl: Duration::from_secs(60),
    session_lifetime: Duration::from_secs(300),
    reuse_grace: Duration::from_secs(10),
};
const USERS: usize = 2;

#[derive(Debug, Clone)]
enum Command {
    /// Log in; `stale` checks the password hash from before the last change.
    Login {
        user: usize,
        stale: bool,
    },
    /// Present the token `back` generations before the session's newest.
    Refresh {
        session: usize,
        back: usize,
    },
    /// Present a token at a real place with a hash nobody issued.
    Forged {
        session: usize,
    },
    Logout {
        session: usize,
    },
    LogoutAll {
        user: usize,
    },
    ChangePassword {
        user: usize,
        keep: Option<usize>,
    },
    Advance {
        millis: i64,
    },
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        2 => (0..USERS, prop::bool::weighted(0.2))
            .prop_map(|(user, stale)| Command::Login { user, stale }),
        8 => (0..8usize, prop_oneof![5 => Just(0usize), 3 => Just(1usize), 1 => 2..4usize])
            .prop_map(|(session, back)| Command::Refresh { session, back }),
        1 => (0..8usize).prop_map(|session| Command::Forged { session }),
        1 => (0..8usize).prop_map(|session| Command::Logout { session }),
        1 => (0..USERS).prop_map(|user| Command::LogoutAll { user }),
        1 => (0..USERS, prop::option::of(0..8usize))
            .prop_map(|(user, keep)| Command::ChangePassword { user, keep }),
        4 => prop_oneof![
            Just(SEC), Just(5 * SEC), Just(9 * SEC),
            // Exactly the grace window: a replay then is still inside it.
            Just(10 * SEC), Just(11 * SEC), Just(61 * SEC),
            Just(301 * SEC)
        ]
        .prop_map(|millis| Command::Advance { millis }),
    ]
}

/// What a presented refresh token gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Rotated,
    Replayed,
    Reused,
    Expired,
    Revoked,
    Invalid,
}

struct ModelToken {
    hash: RefreshTokenHash,
    issued_at: i64,
    spent_at: Option<i64>,
}

/// A session as the model sees it: its chain of tokens, generation = index.
struct ModelSession {
    id: SessionId,
    user: usize,
    created_at: i64,
    revoked: bool,
    chain: Vec<ModelToken>,
}

struct ModelUser {
    user: User,
    hash: String,
    previous_hash: String,
}

/// The rotation rules, stated over the chain: the newest token of a live session
/// rotates until it idles out or the session's lifetime ends; the one before it,
/// presented again within the grace window after it was spent, gets the same successor
/// again; any other spent token is a theft signal and ends the session.
fn rule(session: &ModelSession, generation: usize, now: i64) -> Answer {
    if session.revoked {
        return Answer::Revoked;
    }
    let lifetime_over = now >= session.created_at + 300 * SEC;
    let newest = session.chain.len() - 1;
    let token = &session.chain[generation];
    if generation == newest {
        if lifetime_over || now >= token.issued_at + 60 * SEC {
            Answer::Expired
        } else {
            Answer::Rotated
        }
    } else if generation + 1 == newest
        && token.spent_at.is_some_and(|spent| now <= spent + 10 * SEC)
    {
        if lifetime_over {
            Answer::Expired
        } else {
            Answer::Replayed
        }
    } else {
        Answer::Reused
    }
}

struct Run {
    store: Arc<dyn Store>,
    now: i64,
    users: Vec<ModelUser>,
    sessions: Vec<ModelSession>,
}

fn check(condition: bool, what: impl FnOnce() -> String) -> Result<(), TestCaseError> {
    if condition {
        Ok(())
    } else {
        Err(TestCaseError::fail(what()))
    }
}

impl Run {
    async fn new(store: Arc<dyn Store>) -> Self {
        let mut users = Vec::new();
        for _ in 0..USERS {
            let mut user = new_user(&format!("{}@model.test", uuid::Uuid::new_v4()));
            user.password_hash = format!("hash-{}", uuid::Uuid::new_v4());
            store.insert_user(&user).await.unwrap();
            users.push(ModelUser {
                hash: user.password_hash.clone(),
                previous_hash: user.password_hash.clone(),
                user,
            });
        }
        Self {
            store,
            now: 1_000_000 * SEC,
            users,
            sessions: Vec::new(),
        }
    }

    fn at(&self) -> Timestamp {
        t(self.now)
    }

    /// The system's answer: the service's refresh algorithm on the store.
    async fn present(
        &self,
        lookup: latchkey_core::refresh::RefreshTokenLookup,
    ) -> (Answer, Option<RefreshTokenHash>) {
        let state = self.store.refresh_state(&lookup).await.unwrap();
        let decision = decide(
            state.as_ref().map(|s| (&s.token, &s.session)),
            self.at(),
            &POLICY,
        );
        let answer = match decision {
            RotationDecision::Reject(RefreshRejection::Invalid) => Answer::Invalid,
            RotationDecision::Reject(RefreshRejection::Expired) => Answer::Expired,
            RotationDecision::Reject(RefreshRejection::SessionRevoked) => Answer::Revoked,
            RotationDecision::ReplaySuccessor => Answer::Replayed,
            RotationDecision::ReuseDetected => {
                let state = state.as_ref().unwrap();
                let ev = event(
                    SecurityEventKind::RefreshReuseDetected,
                    self.at(),
                    Some(state.session.user_id),
                    Some(state.session.id),
                );
                let revoked = self
                    .store
                    .revoke_session(state.session.id, self.at(), t(self.now + 900 * SEC), &ev)
                    .await
                    .unwrap();
                assert!(revoked, "reuse revoked an already revoked session");
                Answer::Reused
            }
            RotationDecision::Rotate {
                successor_generation,
            } => {
                let state = state.as_ref().unwrap();
                assert_eq!(successor_generation, state.token.generation + 1);
                let successor = random_hash();
                let rotation = Rotation {
                    session_id: state.session.id,
                    presented: lookup.hash.clone(),
                    presented_generation: state.token.generation,
                    successor: successor.clone(),
                    now: self.at(),
                    client_ip: None,
                };
                let outcome = self.store.rotate(&rotation).await.unwrap();
                assert_eq!(
                    outcome,
                    RotateOutcome::Rotated,
                    "no concurrency, no conflict"
                );
                return (Answer::Rotated, Some(successor));
            }
        };
        (answer, None)
    }

    fn revocation(&self, kind: SecurityEventKind, user: usize) -> SessionRevocation {
        SessionRevocation {
            now: self.at(),
            access_tokens_until: t(self.now + 900 * SEC),
            event: event(kind, self.at(), Some(self.users[user].user.id), None),
        }
    }

    fn live_sessions_of(&self, user: usize, except: Option<SessionId>) -> BTreeSet<SessionId> {
        self.sessions
            .iter()
            .filter(|s| s.user == user && !s.revoked && Some(s.id) != except)
            .map(|s| s.id)
            .collect()
    }

    fn revoke_in_model(&mut self, ids: &BTreeSet<SessionId>) {
        for session in &mut self.sessions {
            if ids.contains(&session.id) {
                session.revoked = true;
            }
        }
    }

    async fn apply(&mut self, command: &Command) -> Result<(), TestCaseError> {
        let n = self.sessions.len();
        match *command {
            Command::Advance { millis } => self.now += millis,
            Command::Login { user, stale } => {
                let u = &self.users[user];
                let checked = if stale { &u.previous_hash } else { &u.hash };
                let expect_created = *checked == u.hash;
                let session = latchkey_core::model::Session {
                    id: SessionId::generate(),
                    user_id: u.user.id,
                    created_at: self.at(),
                    latest_generation: 0,
                    revoked_at: None,
                };
                let first = random_hash();
                let outcome = self
                    .store
                    .create_session(&NewSession {
                        session: session.clone(),
                        first_token: first.clone(),
                        password_hash: checked.clone(),
                        client_ip: None,
                        user_agent: None,
                        device: latchkey_core::device::Device::of(None, None),
                        auth_methods: Default::default(),
                    })
                    .await
                    .unwrap();
                let created = matches!(outcome, CreateSessionOutcome::Created { .. });
                check(created == expect_created, || {
                    format!(
                        "login (stale: {stale}): model created={expect_created}, store {outcome:?}"
                    )
                })?;
                if created {
                    self.sessions.push(ModelSession {
                        id: session.id,
                        user,
                        created_at: self.now,
                        revoked: false,
                        chain: vec![ModelToken {
                            hash: first,
                            issued_at: self.now,
                            spent_at: None,
                        }],
                    });
                }
            }
            Command::Refresh { session, back } if n > 0 => {
                let s = &self.sessions[session % n];
                let Some(generation) = (s.chain.len() - 1).checked_sub(back) else {
                    return Ok(());
                };
                let expected = rule(s, generation, self.now);
                let lookup = located(
                    s.id,
                    u32::try_from(generation).unwrap(),
                    s.chain[generation].hash.clone(),
                );
                let (answer, successor) = self.present(lookup).await;
                check(answer == expected, || {
                    format!("refresh of generation {generation} (newest {}): model {expected:?}, store+decide {answer:?}", s.chain.len() - 1)
                })?;
                let now = self.now;
                let s = &mut self.sessions[session % n];
                match answer {
                    Answer::Rotated => {
                        s.chain[generation].spent_at = Some(now);
                        s.chain.push(ModelToken {
                            hash: successor.unwrap(),
                            issued_at: now,
                            spent_at: None,
                        });
                    }
                    Answer::Reused => s.revoked = true,
                    _ => {}
                }
                self.compare_session(session % n).await?;
            }
            Command::Forged { session } if n > 0 => {
                let s = &self.sessions[session % n];
                let generation = u32::try_from(s.chain.len() - 1).unwrap();
                let (answer, _) = self.present(located(s.id, generation, random_hash())).await;
                check(answer == Answer::Invalid, || {
                    format!("forged token: store+decide {answer:?}")
                })?;
                self.compare_session(session % n).await?;
            }
            Command::Logout { session } if n > 0 => {
                let s = &self.sessions[session % n];
                let ev = event(SecurityEventKind::Logout, self.at(), None, Some(s.id));
                let revoked = self
                    .store
                    .revoke_session(s.id, self.at(), t(self.now + 900 * SEC), &ev)
                    .await
                    .unwrap();
                check(revoked != s.revoked, || {
                    format!("logout: model live={}, store revoked={revoked}", !s.revoked)
                })?;
                self.sessions[session % n].revoked = true;
            }
            Command::LogoutAll { user } => {
                let expected = self.live_sessions_of(user, None);
                let revocation = self.revocation(SecurityEventKind::SessionRevoked, user);
                let revoked: BTreeSet<SessionId> = self
                    .store
                    .revoke_user_sessions(self.users[user].user.id, None, &revocation)
                    .await
                    .unwrap()
                    .into_iter()
                    .collect();
                check(revoked == expected, || {
                    format!("logout-all: model {expected:?}, store {revoked:?}")
                })?;
                self.revoke_in_model(&expected);
            }
            Command::ChangePassword { user, keep } => {
                let own: Vec<SessionId> = self
                    .sessions
                    .iter()
                    .filter(|s| s.user == user)
                    .map(|s| s.id)
                    .collect();
                let keep = keep.and_then(|k| own.get(k % own.len().max(1)).copied());
                let expected = self.live_sessions_of(user, keep);
                let new_hash = format!("hash-{}", uuid::Uuid::new_v4());
                let change = PasswordChange {
                    id: self.users[user].user.id,
                    expected_hash: self.users[user].hash.clone(),
                    new_hash: new_hash.clone(),
                    keep_session: keep,
                    revocation: self.revocation(SecurityEventKind::PasswordChanged, user),
                };
                let outcome = self.store.change_password(&change).await.unwrap();
                let UserUpdateOutcome::Applied { revoked } = outcome else {
                    return Err(TestCaseError::fail(format!("password change: {outcome:?}")));
                };
                let revoked: BTreeSet<SessionId> = revoked.into_iter().collect();
                check(revoked == expected, || {
                    format!("password change: model {expected:?}, store {revoked:?}")
                })?;
                self.revoke_in_model(&expected);
                let u = &mut self.users[user];
                u.previous_hash = std::mem::replace(&mut u.hash, new_hash);
            }
            _ => {}
        }
        Ok(())
    }

    /// The stored session agrees with the model: revoked or not, newest generation.
    async fn compare_session(&self, index: usize) -> Result<(), TestCaseError> {
        let s = &self.sessions[index];
        let stored = self.store.session(s.id).await.unwrap().unwrap();
        check(
            stored.revoked_at.is_some() == s.revoked
                && stored.latest_generation as usize == s.chain.len() - 1,
            || {
                format!(
                    "session state: model revoked={} newest={}, store {stored:?}",
                    s.revoked,
                    s.chain.len() - 1
                )
            },
        )
    }
}

fn agree_with_the_model(harness: Option<Harness>, runtime: &tokio::runtime::Runtime) {
    let Some(harness) = harness else {
        return;
    };
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let store = harness.store.clone();
    let result = runner.run(&prop::collection::vec(command(), 1..60), |commands| {
        runtime.block_on(async {
            let mut run = Run::new(store.clone()).await;
            for command in &commands {
                run.apply(command).await?;
            }
            Ok::<(), TestCaseError>(())
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    drop(harness);
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn sqlite_full_agrees_with_the_model() {
    let rt = runtime();
    let harness = rt.block_on(Harness::sqlite());
    agree_with_the_model(Some(harness), &rt);
}

#[test]
fn sqlite_normal_agrees_with_the_model() {
    let rt = runtime();
    let harness = rt.block_on(Harness::sqlite_normal());
    agree_with_the_model(Some(harness), &rt);
}

#[test]
fn postgres_agrees_with_the_model() {
    let rt = runtime();
    let harness = rt.block_on(Harness::postgres());
    agree_with_the_model(harness, &rt);
}
