//! The refresh-token rotation state machine, as a pure function.
//!
//! [`decide`] looks at what the store holds for the presented token, the time and the
//! policy, and says what must happen. It does no I/O; the caller applies the decision
//! to the store atomically (see [`crate::store::SessionStore::rotate`]) and, if the
//! store reports a conflict, reloads and decides again.

use std::time::Duration;

use crate::model::{RefreshTokenRecord, Session};
use crate::time::Timestamp;

/// The lifetimes that govern rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// A refresh token not used for this long expires (idle timeout).
    pub idle_ttl: Duration,
    /// A session ends this long after login, however active (absolute timeout).
    pub session_lifetime: Duration,
    /// How long after a token was spent a late duplicate still gets the same successor.
    pub reuse_grace: Duration,
}

/// Why a refresh was refused without touching the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshRejection {
    /// No such token.
    Invalid,
    /// Idle timeout or absolute lifetime passed.
    Expired,
    /// The session was revoked (logout, reuse, admin).
    SessionRevoked,
}

/// What to do with a presented refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationDecision {
    /// Spend the token and issue the successor of this generation.
    Rotate {
        /// Generation of the successor (presented generation + 1).
        successor_generation: u32,
    },
    /// The token was spent moments ago and its successor is the newest token: answer
    /// with that same successor (two tabs, or a retry after a lost response).
    ReplaySuccessor,
    /// A spent token came back too late, or out of order: treat it as stolen and
    /// revoke the whole family.
    ReuseDetected,
    /// Refuse.
    Reject(RefreshRejection),
}

/// Whether an unrevoked session made at `created_at`, whose newest token was issued at
/// `last_used_at`, can still be refreshed at `now` (the same lifetimes [`decide`] applies).
pub fn session_is_live(
    created_at: Timestamp,
    last_used_at: Timestamp,
    now: Timestamp,
    policy: &RotationPolicy,
) -> bool {
    now < created_at.plus(policy.session_lifetime) && now < last_used_at.plus(policy.idle_ttl)
}

/// Decide what a presented refresh token leads to.
///
/// `stored` is the token's record and its session as the store holds them, or `None` if
/// the store knows no such token.
pub fn decide(
    stored: Option<(&RefreshTokenRecord, &Session)>,
    now: Timestamp,
    policy: &RotationPolicy,
) -> RotationDecision {
    let Some((token, session)) = stored else {
        return RotationDecision::Reject(RefreshRejection::Invalid);
    };
    if session.revoked_at.is_some() {
        return RotationDecision::Reject(RefreshRejection::SessionRevoked);
    }
    let session_over = now >= session.created_at.plus(policy.session_lifetime);
    if let Some(spent_at) = token.spent_at {
        let within_grace = now <= spent_at.plus(policy.reuse_grace);
        let successor_is_newest =
            token.generation.checked_add(1) == Some(session.latest_generation);
        return if within_grace && successor_is_newest {
            if session_over {
                RotationDecision::Reject(RefreshRejection::Expired)
            } else {
                RotationDecision::ReplaySuccessor
            }
        } else {
            RotationDecision::ReuseDetected
        };
    }
    if token.generation != session.latest_generation {
        // An unspent token that is not the newest cannot arise from rotation; refuse to
        // trust a family in that state.
        return RotationDecision::ReuseDetected;
    }
    if session_over || now >= token.issued_at.plus(policy.idle_ttl) {
        return RotationDecision::Reject(RefreshRejection::Expired);
    }
    match token.generation.checked_add(1) {
        Some(successor_generation) => RotationDecision::Rotate {
            successor_generation,
        },
        None => RotationDecision::Reject(RefreshRejection::Expired),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SessionId, UserId};
    use crate::refresh::RefreshTokenHash;

    const SEC: i64 = 1000;
    const POLICY: RotationPolicy = RotationPolicy {
        idle_ttl: Duration::from_secs(7 * 86_400),
        session_lifetime: Duration::from_secs(30 * 86_400),
        reuse_grace: Duration::from_secs(10),
    };
    const LOGIN: i64 = 1_000_000 * SEC;

    fn session(latest: u32, revoked: bool) -> Session {
        Session {
            id: SessionId::generate(),
            user_id: UserId::generate(),
            created_at: Timestamp::from_unix_millis(LOGIN),
            latest_generation: latest,
            revoked_at: revoked.then(|| Timestamp::from_unix_millis(LOGIN + SEC)),
        }
    }

    fn token(generation: u32, issued: i64, spent: Option<i64>) -> RefreshTokenRecord {
        RefreshTokenRecord {
            hash: RefreshTokenHash::from_bytes([1; 32]),
            session_id: SessionId::generate(),
            generation,
            issued_at: Timestamp::from_unix_millis(issued),
            spent_at: spent.map(Timestamp::from_unix_millis),
        }
    }

    fn at(millis: i64) -> Timestamp {
        Timestamp::from_unix_millis(millis)
    }

    #[test]
    fn unknown_token_is_invalid() {
        assert_eq!(
            decide(None, at(LOGIN), &POLICY),
            RotationDecision::Reject(RefreshRejection::Invalid)
        );
    }

    #[test]
    fn current_token_rotates_to_next_generation() {
        let (t, s) = (token(3, LOGIN, None), session(3, false));
        assert_eq!(
            decide(Some((&t, &s)), at(LOGIN + 60 * SEC), &POLICY),
            RotationDecision::Rotate {
                successor_generation: 4
            }
        );
    }

    #[test]
    fn revoked_session_is_refused_whatever_the_token() {
        let s = session(1, true);
        for t in [token(1, LOGIN, None), token(0, LOGIN, Some(LOGIN + SEC))] {
            assert_eq!(
                decide(Some((&t, &s)), at(LOGIN + 2 * SEC), &POLICY),
                RotationDecision::Reject(RefreshRejection::SessionRevoked)
            );
        }
    }

    #[test]
    fn spent_token_within_grace_replays_the_successor() {
        let spent = LOGIN + 100 * SEC;
        let (t, s) = (token(0, LOGIN, Some(spent)), session(1, false));
        for now in [spent, spent + 5 * SEC, spent + 10 * SEC] {
            assert_eq!(
                decide(Some((&t, &s)), at(now), &POLICY),
                RotationDecision::ReplaySuccessor
            );
        }
    }

    #[test]
    fn spent_token_after_grace_is_reuse() {
        let spent = LOGIN + 100 * SEC;
        let (t, s) = (token(0, LOGIN, Some(spent)), session(1, false));
        assert_eq!(
            decide(Some((&t, &s)), at(spent + 10 * SEC + 1), &POLICY),
            RotationDecision::ReuseDetected
        );
    }

    #[test]
    fn older_than_the_newest_ones_predecessor_is_reuse_even_within_grace() {
        let spent = LOGIN + 100 * SEC;
        let (t, s) = (token(0, LOGIN, Some(spent)), session(2, false));
        assert_eq!(
            decide(Some((&t, &s)), at(spent + SEC), &POLICY),
            RotationDecision::ReuseDetected
        );
    }

    #[test]
    fn zero_grace_makes_any_replay_reuse() {
        let policy = RotationPolicy {
            reuse_grace: Duration::ZERO,
            ..POLICY
        };
        let spent = LOGIN + 100 * SEC;
        let (t, s) = (token(0, LOGIN, Some(spent)), session(1, false));
        assert_eq!(
            decide(Some((&t, &s)), at(spent), &policy),
            RotationDecision::ReplaySuccessor
        );
        assert_eq!(
            decide(Some((&t, &s)), at(spent + 1), &policy),
            RotationDecision::ReuseDetected
        );
    }

    #[test]
    fn replay_within_grace_after_the_absolute_lifetime_is_expired() {
        let end = LOGIN + 30 * 86_400 * SEC;
        let (t, s) = (token(5, end - 5 * SEC, Some(end - SEC)), session(6, false));
        assert_eq!(
            decide(Some((&t, &s)), at(end), &POLICY),
            RotationDecision::Reject(RefreshRejection::Expired)
        );
    }

    #[test]
    fn idle_token_expires() {
        let issued = LOGIN + 1000 * SEC;
        let (t, s) = (token(2, issued, None), session(2, false));
        let idle_end = issued + 7 * 86_400 * SEC;
        assert_eq!(
            decide(Some((&t, &s)), at(idle_end - 1), &POLICY),
            RotationDecision::Rotate {
                successor_generation: 3
            }
        );
        assert_eq!(
            decide(Some((&t, &s)), at(idle_end), &POLICY),
            RotationDecision::Reject(RefreshRejection::Expired)
        );
    }

    #[test]
    fn absolute_lifetime_ends_an_active_session() {
        let end = LOGIN + 30 * 86_400 * SEC;
        let (t, s) = (token(9, end - 60 * SEC, None), session(9, false));
        assert_eq!(
            decide(Some((&t, &s)), at(end - 1), &POLICY),
            RotationDecision::Rotate {
                successor_generation: 10
            }
        );
        assert_eq!(
            decide(Some((&t, &s)), at(end), &POLICY),
            RotationDecision::Reject(RefreshRejection::Expired)
        );
    }

    #[test]
    fn unspent_token_that_is_not_the_newest_is_treated_as_reuse() {
        let (t, s) = (token(1, LOGIN, None), session(3, false));
        assert_eq!(
            decide(Some((&t, &s)), at(LOGIN + SEC), &POLICY),
            RotationDecision::ReuseDetected
        );
    }

    #[test]
    fn generation_overflow_is_refused_not_wrapped() {
        let (t, s) = (token(u32::MAX, LOGIN, None), session(u32::MAX, false));
        assert_eq!(
            decide(Some((&t, &s)), at(LOGIN + SEC), &POLICY),
            RotationDecision::Reject(RefreshRejection::Expired)
        );
    }

    #[test]
    fn spent_token_of_a_stale_family_is_reuse_even_after_the_lifetime() {
        let end = LOGIN + 30 * 86_400 * SEC;
        let (t, s) = (token(0, LOGIN, Some(LOGIN + SEC)), session(1, false));
        assert_eq!(
            decide(Some((&t, &s)), at(end + SEC), &POLICY),
            RotationDecision::ReuseDetected
        );
    }
}

#[cfg(test)]
mod liveness_tests {
    use super::*;

    const POLICY: RotationPolicy = RotationPolicy {
        idle_ttl: Duration::from_secs(100),
        session_lifetime: Duration::from_secs(1000),
        reuse_grace: Duration::from_secs(10),
    };

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_unix_millis(secs * 1000)
    }

    #[test]
    fn a_session_lives_until_idle_or_absolute_expiry() {
        assert!(session_is_live(at(0), at(0), at(99), &POLICY));
        assert!(!session_is_live(at(0), at(0), at(100), &POLICY));
        assert!(session_is_live(at(0), at(950), at(999), &POLICY));
        assert!(!session_is_live(at(0), at(950), at(1000), &POLICY));
    }
}
