//! The second factor's rules, free of I/O and of the clock: which TOTP time steps a
//! code may come from, whether an accepted step may be accepted again, how many wrong
//! codes a login attempt gets, what a recovery code looks like, and which
//! authentication methods a session was made with (RFC 8176 `amr`).
//!
//! The HMAC arithmetic of RFC 6238 lives in the server (a maintained TOTP crate); the
//! store applies the replay decision as a compare-and-set (`last_step < step`), so two
//! replicas cannot both accept one code.

use aws_lc_rs::digest;

use crate::time::Timestamp;

/// RFC 6238's time step, as every authenticator app uses it.
pub const TOTP_STEP_SECONDS: i64 = 30;

/// Clock skew tolerated: one step either side.
pub const TOTP_SKEW_STEPS: i64 = 1;

/// Wrong codes a login attempt (one `mfa_token`) tolerates; the next makes it void.
pub const MAX_CODE_FAILURES: u32 = 5;

/// Recovery codes handed out per set.
pub const RECOVERY_CODE_COUNT: usize = 10;

/// The time step `now` falls into.
pub fn time_step(now: Timestamp) -> i64 {
    now.unix_seconds().div_euclid(TOTP_STEP_SECONDS)
}

/// The steps a code presented at `now` may come from, oldest first: the current one and
/// [`TOTP_SKEW_STEPS`] either side.
pub fn acceptable_steps(now: Timestamp) -> impl Iterator<Item = i64> {
    let current = time_step(now);
    (current - TOTP_SKEW_STEPS)..=(current + TOTP_SKEW_STEPS)
}

/// What to do with a TOTP code that matched `step`, given the last step accepted for
/// this user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepDecision {
    /// Accept it, recording `step` as the last accepted (compare-and-set in the store).
    Accept,
    /// Refuse it: this step, or a later one, was accepted already (a replayed code).
    Replayed,
}

/// Decide on a code that matched `step` when `last_accepted` is the newest step accepted
/// so far. The store applies the same rule atomically; this is the rule's statement.
pub fn decide_step(step: i64, last_accepted: Option<i64>) -> StepDecision {
    match last_accepted {
        Some(last) if last >= step => StepDecision::Replayed,
        _ => StepDecision::Accept,
    }
}

/// Whether a login attempt with `failures` wrong codes so far may still be completed.
pub fn challenge_usable(failures: u32) -> bool {
    failures < MAX_CODE_FAILURES
}

/// How a login attempt's `mfa_token` stands at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeState {
    /// A code may be presented.
    Open,
    /// Too late: log in again.
    Expired,
    /// Used, or voided by too many wrong codes.
    Void,
}

/// Decide on a stored challenge: `expires_at`, wrong codes so far, and whether it was used.
pub fn challenge_state(
    expires_at: Timestamp,
    failures: u32,
    used: bool,
    now: Timestamp,
) -> ChallengeState {
    if used || !challenge_usable(failures) {
        ChallengeState::Void
    } else if now >= expires_at {
        ChallengeState::Expired
    } else {
        ChallengeState::Open
    }
}

/// A recovery code as shown to the user: 128 random bits as 32 lowercase hex digits in
/// four groups, `xxxxxxxx-xxxxxxxx-xxxxxxxx-xxxxxxxx`.
pub fn format_recovery_code(random: &[u8; 16]) -> String {
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let groups: Vec<&str> = (0..4).map(|i| &hex[i * 8..i * 8 + 8]).collect();
    groups.join("-")
}

/// A recovery code as typed back: case, spaces and dashes do not matter. `None` if it
/// cannot be one (so that nothing else is hashed).
pub fn normalize_recovery_code(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let digits: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (digits.len() == 32 && digits.chars().all(|c| c.is_ascii_hexdigit())).then_some(digits)
}

/// The stored form of a recovery code: SHA-256 of its normalised digits. The codes hold
/// 128 random bits, so a fast hash is enough (nothing to guess from a leaked hash).
pub fn recovery_code_hash(normalized: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, normalized.as_bytes()).as_ref());
    out
}

/// How a session's user proved who they are (RFC 8176 `amr` values).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum AuthMethods {
    /// The password alone: `["pwd"]`.
    #[default]
    Password,
    /// The password and a one-time code (TOTP or recovery code): `["pwd","otp"]`.
    PasswordAndOtp,
}

impl AuthMethods {
    /// The `amr` claim.
    pub fn amr(self) -> Vec<String> {
        match self {
            Self::Password => vec!["pwd".to_owned()],
            Self::PasswordAndOtp => vec!["pwd".to_owned(), "otp".to_owned()],
        }
    }

    /// The stored form (a session column); `None` is a password-only session.
    pub fn as_db(self) -> Option<&'static str> {
        match self {
            Self::Password => None,
            Self::PasswordAndOtp => Some("pwd otp"),
        }
    }

    /// Read back the stored form; anything unknown counts as password only.
    pub fn from_db(stored: Option<&str>) -> Self {
        match stored {
            Some("pwd otp") => Self::PasswordAndOtp,
            _ => Self::Password,
        }
    }
}

/// Whether an authentication at `auth_time` is recent enough at `now` for a sensitive
/// change (step-up), given the re-authentication window in seconds.
pub fn recent_enough(auth_time: i64, now: Timestamp, window_seconds: i64) -> bool {
    now.unix_seconds().saturating_sub(auth_time) <= window_seconds
}

/// Whether the login behind an access token is enough for the admin routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAuthentication {
    /// Enough: a recent login with more than one factor.
    Sufficient,
    /// Enough unless the account has a second factor, which this login did not use
    /// (the caller looks that up: only then is a store read needed).
    SufficientWithoutSecondFactor,
    /// The login is older than the maximum age, or its time is unknown (a token from
    /// before `auth_time`): log in again.
    LoginTooOld,
}

/// Decide whether a token whose login was at `auth_time` (Unix seconds), with
/// `multi_factor` telling whether it used a second factor, may use the admin routes at
/// `now`, when admin work needs a login at most `max_age_seconds` old. Refreshing keeps
/// `auth_time`, so a refreshed token is never more recent than its login.
pub fn admin_authentication(
    auth_time: Option<i64>,
    multi_factor: bool,
    now: Timestamp,
    max_age_seconds: i64,
) -> AdminAuthentication {
    match auth_time {
        Some(at) if recent_enough(at, now, max_age_seconds) => {
            if multi_factor {
                AdminAuthentication::Sufficient
            } else {
                AdminAuthentication::SufficientWithoutSecondFactor
            }
        }
        _ => AdminAuthentication::LoginTooOld,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_unix_millis(seconds * 1000)
    }

    #[test]
    fn the_window_is_one_step_either_side() {
        assert_eq!(acceptable_steps(at(59)).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(acceptable_steps(at(60)).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[test]
    fn a_step_is_accepted_once_and_never_an_older_one() {
        let table = [
            (10, None, StepDecision::Accept),
            (10, Some(9), StepDecision::Accept),
            (10, Some(10), StepDecision::Replayed),
            (10, Some(11), StepDecision::Replayed),
        ];
        for (step, last, want) in table {
            assert_eq!(decide_step(step, last), want, "step {step} after {last:?}");
        }
    }

    #[test]
    fn a_challenge_is_void_after_five_wrong_codes_and_expires() {
        let exp = at(300);
        assert_eq!(challenge_state(exp, 0, false, at(0)), ChallengeState::Open);
        assert_eq!(challenge_state(exp, 4, false, at(0)), ChallengeState::Open);
        assert_eq!(challenge_state(exp, 5, false, at(0)), ChallengeState::Void);
        assert_eq!(challenge_state(exp, 0, true, at(0)), ChallengeState::Void);
        assert_eq!(
            challenge_state(exp, 0, false, at(300)),
            ChallengeState::Expired
        );
    }

    #[test]
    fn recovery_codes_round_trip_through_their_typed_forms() {
        let code = format_recovery_code(&[0xab; 16]);
        assert_eq!(code, "abababab-abababab-abababab-abababab");
        let typed = code.to_uppercase().replace('-', " ");
        let normalized = normalize_recovery_code(&typed).unwrap();
        assert_eq!(
            recovery_code_hash(&normalized),
            recovery_code_hash(&code.replace('-', ""))
        );
        assert_eq!(normalize_recovery_code("123456"), None);
        assert_eq!(normalize_recovery_code(&"g".repeat(32)), None);
    }

    #[test]
    fn auth_methods_round_trip_and_name_rfc_8176_values() {
        for methods in [AuthMethods::Password, AuthMethods::PasswordAndOtp] {
            assert_eq!(AuthMethods::from_db(methods.as_db()), methods);
        }
        assert_eq!(AuthMethods::PasswordAndOtp.amr(), ["pwd", "otp"]);
        assert_eq!(AuthMethods::Password.amr(), ["pwd"]);
    }

    #[test]
    fn admin_work_needs_a_recent_login_and_asks_about_the_second_factor_only_without_it() {
        use AdminAuthentication::{LoginTooOld, Sufficient, SufficientWithoutSecondFactor};
        let table = [
            (Some(100), true, 1000, Sufficient),
            (Some(100), false, 1000, SufficientWithoutSecondFactor),
            (Some(100), true, 1001, LoginTooOld),
            (Some(100), false, 1001, LoginTooOld),
            (None, true, 100, LoginTooOld),
            // A login "in the future" (clock skew between replicas) is recent.
            (Some(2000), false, 1000, SufficientWithoutSecondFactor),
        ];
        for (auth_time, multi_factor, now, want) in table {
            assert_eq!(
                admin_authentication(auth_time, multi_factor, at(now), 900),
                want,
                "{auth_time:?} {multi_factor} at {now}"
            );
        }
    }

    #[test]
    fn step_up_needs_a_recent_authentication() {
        assert!(recent_enough(100, at(700), 600));
        assert!(!recent_enough(100, at(701), 600));
    }
}
