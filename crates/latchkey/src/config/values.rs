//! The value types of settings that need their own parsing, and the error of a setting
//! that is refused.

use std::str::FromStr;
use std::time::Duration;

/// A setting that would make the server unsafe or unable to work.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting {setting}: {reason}")]
pub struct ConfigError {
    /// The environment variable of the setting.
    pub setting: &'static str,
    /// What is wrong.
    pub reason: String,
}

/// A duration written as a number and a unit: `500ms`, `30s`, `15m`, `12h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let n: u64 = number
            .parse()
            .map_err(|_| format!("{s:?}: expected a number and a unit, like 15m"))?;
        let unit_ms: u64 = match unit {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(format!("{s:?}: the unit must be one of ms, s, m, h, d")),
        };
        n.checked_mul(unit_ms)
            .map(|ms| Self(Duration::from_millis(ms)))
            .ok_or_else(|| format!("{s:?}: too long"))
    }
}

/// A rate limit written as `count/period`, like `10/1m`: at most `count` requests per
/// `period`, spread out (a burst of `count` is allowed after a quiet period).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSpec {
    /// Requests allowed per period.
    pub count: u32,
    /// The period.
    pub period: Duration,
}

impl FromStr for RateSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (count, period) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?}: expected count/period, like 10/1m"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: the count must be a whole number"))?;
        let period = HumanDuration::from_str(period)?.0;
        if count == 0 || period.is_zero() {
            return Err(format!("{s:?}: count and period must be positive"));
        }
        Ok(Self { count, period })
    }
}

/// Which proxies' `X-Forwarded-For` entries to believe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrustedProxies {
    /// This many proxies stand in front of Latchkey: the client is the entry this many
    /// places from the right of the chain (`X-Forwarded-For` entries, then the socket
    /// address).
    Hops(u8),
    /// Proxies at these networks: the client is the right-most address of the chain that
    /// is not one of them.
    Networks(Vec<ipnet::IpNet>),
}

impl FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Ok(hops) = s.parse::<u8>() {
            return match hops {
                1..=16 => Ok(Self::Hops(hops)),
                _ => Err(format!("{s:?}: a hop count must be 1 to 16")),
            };
        }
        let networks = s
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<ipnet::IpNet>()
                    .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        format!("{part:?}: expected an address or CIDR such as 10.0.0.0/8")
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if networks.is_empty() {
            return Err("expected a hop count or a list of addresses and CIDRs".to_owned());
        }
        Ok(Self::Networks(networks))
    }
}

/// `LATCHKEY_COOKIE_SECURE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieSecurity {
    /// Secure unless the issuer is a plain-HTTP loopback address.
    Auto,
    /// Always Secure.
    Always,
    /// Never Secure (local development over plain HTTP).
    Never,
}

impl FromStr for CookieSecurity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "true" | "1" | "yes" => Ok(Self::Always),
            "false" | "0" | "no" => Ok(Self::Never),
            _ => Err(format!("{s:?}: expected auto, true or false")),
        }
    }
}
