//! The e-mail settings: where mail goes (SMTP or a directory of `.eml` files), who it
//! is from, the base of links, token lifetimes, limits, and which notices are sent.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use clap::Args;

use crate::config::values::{ConfigError, HumanDuration, RateSpec};

/// An SMTP URL; its password is never shown by `Debug` or in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl(String);

impl SmtpUrl {
    /// The URL with its credentials.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `scheme://host:port`, without credentials or parameters, for logs.
    pub fn redacted(&self) -> String {
        let (scheme, rest) = self.0.split_once("://").unwrap_or(("smtp", &self.0));
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let host = host.split(['?', '/']).next().unwrap_or_default();
        format!("{scheme}://{host}")
    }

    /// Whether the URL carries a user name (and so a password to protect).
    pub fn has_credentials(&self) -> bool {
        self.0.split_once("://").is_some_and(|(_, rest)| {
            rest.split(['/', '?'])
                .next()
                .is_some_and(|a| a.contains('@'))
        })
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpUrl({})", self.redacted())
    }
}

impl FromStr for SmtpUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if !(s.starts_with("smtp://") || s.starts_with("smtps://")) {
            return Err("expected smtp://[user:pass@]host[:port] or smtps://...".to_owned());
        }
        Ok(Self(s.to_owned()))
    }
}

/// The e-mail settings (flattened into [`crate::config::Config`]).
#[derive(Debug, Clone, Args)]
pub struct MailConfig {
    /// The mail server: `smtp://user:pass@host:587` (STARTTLS, required whenever the URL
    /// has credentials or `?tls=required`), `smtps://user:pass@host:465` (TLS from the
    /// start), or `smtp://host:1025` (plain, for a local sink). Unset: mail is written
    /// as `.eml` files into `LATCHKEY_MAIL_DIR`.
    #[arg(long, env = "LATCHKEY_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<SmtpUrl>,

    /// The `From` of every mail, `Name <address>` or an address.
    #[arg(
        long,
        env = "LATCHKEY_MAIL_FROM",
        default_value = "Latchkey <latchkey@localhost>"
    )]
    pub mail_from: String,

    /// Where the links in mails point: `${LATCHKEY_PUBLIC_URL}/reset?token=...`.
    #[arg(
        long,
        env = "LATCHKEY_PUBLIC_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub public_url: String,

    /// With no SMTP server: the directory mails are written to, one `.eml` file each.
    #[arg(long, env = "LATCHKEY_MAIL_DIR", default_value = "./latchkey-mail")]
    pub mail_dir: PathBuf,

    /// A directory of templates overriding the built-in ones, file by file
    /// (`password_reset.subject.txt`, `password_reset.txt`, `password_reset.html`, ...).
    #[arg(long, env = "LATCHKEY_MAIL_TEMPLATES")]
    pub mail_templates: Option<PathBuf>,

    /// How long a password-reset link works.
    #[arg(long, env = "LATCHKEY_RESET_TTL", default_value = "30m")]
    pub reset_ttl: HumanDuration,

    /// How long a verification (or change-of-address) link works.
    #[arg(long, env = "LATCHKEY_VERIFY_TTL", default_value = "24h")]
    pub verify_ttl: HumanDuration,

    /// Refuse logins (403 `email_not_verified`) until the address is verified.
    #[arg(long, env = "LATCHKEY_REQUIRE_VERIFIED_EMAIL", default_value_t = false, action = clap::ArgAction::Set)]
    pub require_verified_email: bool,

    /// Password-reset requests per address.
    #[arg(long, env = "LATCHKEY_RATE_RESET_PER_ADDRESS", default_value = "3/15m")]
    pub rate_reset_per_address: RateSpec,

    /// Password-reset requests per client network (IPv4 /24, IPv6 /64).
    #[arg(
        long,
        env = "LATCHKEY_RATE_RESET_PER_NETWORK",
        default_value = "20/15m"
    )]
    pub rate_reset_per_network: RateSpec,

    /// Verification mails re-sent per account (and changes of address asked).
    #[arg(long, env = "LATCHKEY_RATE_VERIFY_RESEND", default_value = "3/15m")]
    pub rate_verify_resend: RateSpec,

    /// Send "your password was changed" (also after a reset).
    #[arg(long, env = "LATCHKEY_NOTIFY_PASSWORD_CHANGED", default_value_t = true, action = clap::ArgAction::Set)]
    pub notify_password_changed: bool,

    /// Send "new sign-in from <device>" on a login from a new device.
    #[arg(long, env = "LATCHKEY_NOTIFY_NEW_DEVICE", default_value_t = true, action = clap::ArgAction::Set)]
    pub notify_new_device: bool,

    /// Send "suspicious refresh detected, session ended" on refresh-token reuse.
    #[arg(long, env = "LATCHKEY_NOTIFY_REUSE", default_value_t = true, action = clap::ArgAction::Set)]
    pub notify_reuse: bool,

    /// Send "two-factor sign-in turned off" (used once TOTP is in).
    #[arg(long, env = "LATCHKEY_NOTIFY_MFA_DISABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub notify_mfa_disabled: bool,

    /// Attempts to send one mail before it is recorded as failed.
    #[arg(long, env = "LATCHKEY_MAIL_MAX_ATTEMPTS", default_value_t = 10)]
    pub mail_max_attempts: u32,

    /// The wait after a mail's first failed attempt; it doubles after each further one
    /// (up to 1h).
    #[arg(long, env = "LATCHKEY_MAIL_RETRY_BASE", default_value = "10s")]
    pub mail_retry_base: HumanDuration,

    /// How often the outbox is checked for mail due (new mail wakes it at once).
    #[arg(long, env = "LATCHKEY_MAIL_POLL", default_value = "5s")]
    pub mail_poll: HumanDuration,
}

impl MailConfig {
    /// Refuse settings that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |setting, reason: &str| {
            Err(ConfigError {
                setting,
                reason: reason.to_owned(),
            })
        };
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            return fail("LATCHKEY_MAIL_FROM", "must be an address or Name <address>");
        }
        let url = self.public_url.trim_end_matches('/');
        let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
        if !scheme_ok || url.contains(['?', '#', ' ']) {
            return fail(
                "LATCHKEY_PUBLIC_URL",
                "must be an http(s) URL without query or fragment",
            );
        }
        if self.reset_ttl.0.as_secs() < 1 || self.reset_ttl.0.as_secs() > 24 * 3600 {
            return fail("LATCHKEY_RESET_TTL", "must be between 1s and 24h");
        }
        if self.verify_ttl.0.as_secs() < 1 || self.verify_ttl.0.as_secs() > 30 * 24 * 3600 {
            return fail("LATCHKEY_VERIFY_TTL", "must be between 1s and 30d");
        }
        if self.mail_max_attempts == 0 {
            return fail("LATCHKEY_MAIL_MAX_ATTEMPTS", "must be at least 1");
        }
        Ok(())
    }

    /// The public URL without a trailing slash.
    pub fn link_base(&self) -> &str {
        self.public_url.trim_end_matches('/')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_hide_their_credentials() {
        let url: SmtpUrl = "smtp://user:s3cret@mail.example.com:587".parse().unwrap();
        assert!(url.has_credentials());
        assert_eq!(url.redacted(), "smtp://mail.example.com:587");
        assert!(!format!("{url:?}").contains("s3cret"));
        let sink: SmtpUrl = "smtp://127.0.0.1:1025".parse().unwrap();
        assert!(!sink.has_credentials());
        assert!("http://x".parse::<SmtpUrl>().is_err());
    }
}
