//! The webhook settings: where security events are posted, the signing secret, and the
//! delivery timing.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::Args;
use hyper::Uri;
use latchkey_core::webhook::WebhookSigner;
use secrecy::{ExposeSecret, SecretString};

use crate::config::values::{ConfigError, HumanDuration};

/// A webhook endpoint: an `https://` URL, or `http://` to a loopback address.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    text: String,
}

impl WebhookUrl {
    /// The URL as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `scheme://host[:port]`, for logs (a path may carry a token of the receiver's).
    pub fn origin(&self) -> String {
        origin_of(&self.text)
    }
}

/// `scheme://host[:port]` of a URL's text, without any user or password.
pub(crate) fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}")
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({})", self.origin())
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl FromStr for WebhookUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let text = s.trim().to_owned();
        let uri: Uri = text
            .parse()
            .map_err(|_| format!("{:?} is not a URL", origin_of(&text)))?;
        let host = uri.host().unwrap_or_default();
        if host.is_empty() || uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(format!(
                "{:?}: a webhook URL needs a host and no user or password",
                origin_of(&text)
            ));
        }
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if is_loopback(host) => {}
            _ => {
                return Err(format!(
                    "{:?}: webhooks go over https:// (http:// only to a loopback address)",
                    origin_of(&text)
                ))
            }
        }
        Ok(Self { text })
    }
}

/// The webhook settings (flattened into [`crate::config::Config`]).
#[derive(Debug, Clone, Args)]
pub struct WebhookConfig {
    /// Where security events are posted (new device, refresh-token reuse, password and
    /// second-factor changes, account disabled, login ceiling reached), comma-separated:
    /// `https://` URLs, or `http://` to a loopback address. Signed as Standard Webhooks
    /// says, with the secret of `LATCHKEY_WEBHOOK_SECRET_FILE`.
    #[arg(long, env = "LATCHKEY_WEBHOOK_URL", value_delimiter = ',')]
    pub webhook_url: Vec<WebhookUrl>,

    /// A file holding the signing secret, `whsec_` + base64 of 24 to 64 random bytes
    /// (several, separated by white space, during a rotation: each signs).
    #[arg(long, env = "LATCHKEY_WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<PathBuf>,

    /// The signing secret itself, instead of a file.
    #[arg(long, env = "LATCHKEY_WEBHOOK_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub webhook_secret: Option<SecretString>,

    /// How long a receiver has to answer a delivery.
    #[arg(long, env = "LATCHKEY_WEBHOOK_TIMEOUT", default_value = "15s")]
    pub webhook_timeout: HumanDuration,

    /// The wait after a message's first failed delivery; it doubles after each further
    /// one, up to 1h.
    #[arg(long, env = "LATCHKEY_WEBHOOK_RETRY_BASE", default_value = "5s")]
    pub webhook_retry_base: HumanDuration,

    /// How long after its event a message is retried before it is given up (and
    /// recorded as failed).
    #[arg(long, env = "LATCHKEY_WEBHOOK_GIVE_UP_AFTER", default_value = "3d")]
    pub webhook_give_up_after: HumanDuration,

    /// How often the outbox is checked for messages due.
    #[arg(long, env = "LATCHKEY_WEBHOOK_POLL", default_value = "1s")]
    pub webhook_poll: HumanDuration,
}

fn parse_secret(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(s))
}

impl WebhookConfig {
    /// Refuse settings that cannot work (the secret file is read at start-up).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |setting, reason: &str| {
            Err(ConfigError {
                setting,
                reason: reason.to_owned(),
            })
        };
        let secrets = (&self.webhook_secret_file, &self.webhook_secret);
        if let (Some(_), Some(_)) = secrets {
            return fail(
                "LATCHKEY_WEBHOOK_SECRET/LATCHKEY_WEBHOOK_SECRET_FILE",
                "set one of them, not both",
            );
        }
        if !self.webhook_url.is_empty() && matches!(secrets, (None, None)) {
            return fail(
                "LATCHKEY_WEBHOOK_SECRET_FILE",
                "LATCHKEY_WEBHOOK_URL is set: name the file holding the signing secret",
            );
        }
        if let Some(secret) = &self.webhook_secret {
            WebhookSigner::parse(secret.expose_secret()).map_err(|e| ConfigError {
                setting: "LATCHKEY_WEBHOOK_SECRET",
                reason: e.to_string(),
            })?;
        }
        let bounds = [
            (
                "LATCHKEY_WEBHOOK_TIMEOUT",
                self.webhook_timeout,
                100,
                60_000,
            ),
            (
                "LATCHKEY_WEBHOOK_RETRY_BASE",
                self.webhook_retry_base,
                10,
                3_600_000,
            ),
            ("LATCHKEY_WEBHOOK_POLL", self.webhook_poll, 20, 60_000),
            (
                "LATCHKEY_WEBHOOK_GIVE_UP_AFTER",
                self.webhook_give_up_after,
                1_000,
                30 * 86_400_000,
            ),
        ];
        for (setting, value, low, high) in bounds {
            let (low, high) = (Duration::from_millis(low), Duration::from_millis(high));
            if value.0 < low || value.0 > high {
                return fail(setting, &format!("must be between {low:?} and {high:?}"));
            }
        }
        Ok(())
    }

    /// The signer from the configured secret, read now; `None` without one.
    pub fn signer(&self) -> Result<Option<WebhookSigner>, ConfigError> {
        let (setting, text) = match (&self.webhook_secret_file, &self.webhook_secret) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
                    setting: "LATCHKEY_WEBHOOK_SECRET_FILE",
                    reason: format!("could not read {}: {e}", path.display()),
                })?;
                ("LATCHKEY_WEBHOOK_SECRET_FILE", SecretString::from(text))
            }
            (None, Some(secret)) => ("LATCHKEY_WEBHOOK_SECRET", secret.clone()),
            (None, None) => return Ok(None),
        };
        WebhookSigner::parse(text.expose_secret())
            .map(Some)
            .map_err(|e| ConfigError {
                setting,
                reason: e.to_string(),
            })
    }

    /// The endpoints as stored: the URLs as configured.
    pub fn endpoints(&self) -> Vec<String> {
        self.webhook_url
            .iter()
            .map(|u| u.as_str().to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_or_loopback_http_only() {
        for good in [
            "https://hooks.example.com/latchkey?token=abc",
            "http://127.0.0.1:9000/hook",
            "http://localhost:9000/",
            "http://[::1]:8080/x",
        ] {
            assert!(good.parse::<WebhookUrl>().is_ok(), "{good}");
        }
        for bad in [
            "http://hooks.example.com/x",
            "ftp://127.0.0.1/x",
            "https://user:pw@hooks.example.com/",
            "not a url",
            "https:///nohost",
        ] {
            let err = bad.parse::<WebhookUrl>().unwrap_err();
            assert!(!err.contains("pw@"), "{err}");
        }
        let url: WebhookUrl = "https://hooks.example.com/p/secret-path".parse().unwrap();
        assert_eq!(url.origin(), "https://hooks.example.com");
        assert!(!format!("{url:?}").contains("secret-path"));
    }
}
