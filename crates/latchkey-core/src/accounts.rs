//! What an admin's change to an account means: which roles and state to store, whether
//! the user's sessions must die with it, and whether it could leave the server without
//! an admin. Decided here, applied by the store as one compare-and-set.

use crate::model::{Role, User};
use crate::store::UserAccess;
use crate::time::Timestamp;

/// What an admin asked to change; `None` leaves a part as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessChange {
    /// The new set of roles.
    pub roles: Option<Vec<Role>>,
    /// Disable (`true`) or enable (`false`) the account.
    pub disabled: Option<bool>,
}

/// The decision on an [`AccessChange`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessPlan {
    /// What to store.
    pub new: UserAccess,
    /// Revoke every session now: the account was disabled or lost a role. Privileges
    /// must not outlive the change by an access token's lifetime. (An added role takes
    /// effect at the next refresh, which reads the roles afresh.)
    pub revoke_sessions: bool,
    /// The change takes an enabled admin's admin rights away: it is allowed only while
    /// another enabled admin remains.
    pub keep_an_admin: bool,
}

/// Decide what `change` does to `user` at `now`.
pub fn plan_access_change(user: &User, change: &AccessChange, now: Timestamp) -> AccessPlan {
    let mut roles = change.roles.clone().unwrap_or_else(|| user.roles.clone());
    roles.sort();
    roles.dedup();
    let disabled_at = match change.disabled {
        Some(true) => user.disabled_at.or(Some(now)),
        Some(false) => None,
        None => user.disabled_at,
    };
    let newly_disabled = user.disabled_at.is_none() && disabled_at.is_some();
    let role_removed = user.roles.iter().any(|r| !roles.contains(r));
    let admin_after = disabled_at.is_none() && roles.contains(&Role::admin());
    AccessPlan {
        keep_an_admin: user.is_active_admin() && !admin_after,
        revoke_sessions: newly_disabled || role_removed,
        new: UserAccess { roles, disabled_at },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Email, UserId};

    fn user(roles: &[Role], disabled: bool) -> User {
        User {
            id: UserId::generate(),
            email: Email::parse("a@example.com").unwrap(),
            password_hash: String::new(),
            roles: roles.to_vec(),
            created_at: Timestamp::from_unix_millis(0),
            disabled_at: disabled.then(|| Timestamp::from_unix_millis(5)),
        }
    }

    const NOW: Timestamp = Timestamp::from_unix_millis(1000);

    fn change(roles: Option<&[Role]>, disabled: Option<bool>) -> AccessChange {
        AccessChange {
            roles: roles.map(<[Role]>::to_vec),
            disabled,
        }
    }

    #[test]
    fn adding_a_role_keeps_sessions() {
        let plan = plan_access_change(
            &user(&[Role::user()], false),
            &change(Some(&[Role::user(), Role::admin()]), None),
            NOW,
        );
        assert!(!plan.revoke_sessions);
        assert!(!plan.keep_an_admin);
        assert_eq!(plan.new.roles, vec![Role::admin(), Role::user()]);
    }

    #[test]
    fn removing_a_role_or_disabling_revokes_sessions() {
        let plain = user(&[Role::user(), Role::parse("editor").unwrap()], false);
        let demoted = plan_access_change(&plain, &change(Some(&[Role::user()]), None), NOW);
        assert!(demoted.revoke_sessions);
        let disabled = plan_access_change(&plain, &change(None, Some(true)), NOW);
        assert!(disabled.revoke_sessions);
        assert_eq!(disabled.new.disabled_at, Some(NOW));
    }

    #[test]
    fn enabling_or_disabling_again_changes_no_session() {
        let off = user(&[Role::user()], true);
        let again = plan_access_change(&off, &change(None, Some(true)), NOW);
        assert!(!again.revoke_sessions);
        assert_eq!(again.new.disabled_at, off.disabled_at);
        let on = plan_access_change(&off, &change(None, Some(false)), NOW);
        assert!(!on.revoke_sessions);
        assert_eq!(on.new.disabled_at, None);
    }

    #[test]
    fn taking_admin_rights_away_needs_another_admin() {
        let admin = user(&[Role::user(), Role::admin()], false);
        for c in [
            change(Some(&[Role::user()]), None),
            change(None, Some(true)),
            change(Some(&[]), Some(true)),
        ] {
            assert!(plan_access_change(&admin, &c, NOW).keep_an_admin, "{c:?}");
        }
        assert!(!plan_access_change(&admin, &change(None, Some(false)), NOW).keep_an_admin);
        let disabled_admin = user(&[Role::admin()], true);
        assert!(!plan_access_change(&disabled_admin, &change(Some(&[]), None), NOW).keep_an_admin);
    }
}
