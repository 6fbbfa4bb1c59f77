//! Devices: a readable name for a session ("Firefox on Linux"), the client's network,
//! and whether a login comes from a device this user has not used lately.
//!
//! A device is what a user would recognise: the browser (or app) family and operating
//! system from the `User-Agent`, plus the network the request came from (IPv4 /24,
//! IPv6 /64), so a new address in the same home network is not a "new device" but the
//! same laptop on a café's network is.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};

use crate::time::Timestamp;

/// How long a device stays known after it was last used for a login.
pub const KNOWN_DEVICE_WINDOW: Duration = Duration::from_secs(90 * 24 * 3600);

/// A device as seen in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// A readable name, such as "Firefox on Linux".
    pub name: String,
    /// What identifies the device for new-device detection: browser family, operating
    /// system and network.
    pub key: String,
}

impl Device {
    /// The device of a request with this `User-Agent` and client address.
    pub fn of(user_agent: Option<&str>, ip: Option<IpAddr>) -> Self {
        let parsed = user_agent.and_then(|ua| woothee::parser::Parser::new().parse(ua));
        let (browser, os) = match &parsed {
            Some(result) => (known(result.name), known(result.os)),
            None => (None, None),
        };
        let name = match (browser, os) {
            (Some(browser), Some(os)) => format!("{browser} on {os}"),
            (Some(browser), None) => browser.to_owned(),
            (None, Some(os)) => format!("Unknown browser on {os}"),
            (None, None) => "Unknown device".to_owned(),
        };
        let network = ip.map_or_else(|| "unknown".to_owned(), network_of);
        let key = format!(
            "{}|{}|{network}",
            browser.unwrap_or("unknown"),
            os.unwrap_or("unknown")
        );
        Self { name, key }
    }
}

/// woothee says "UNKNOWN" for what it does not recognise.
fn known(value: &str) -> Option<&str> {
    Some(value).filter(|v| !v.is_empty() && !v.eq_ignore_ascii_case("unknown"))
}

/// The client's network: the /24 of an IPv4 address, the /64 of an IPv6 address (an
/// IPv4-mapped IPv6 address counts as IPv4). One subscriber usually owns a whole /64, so
/// limits and device checks per address would be trivially dodged with IPv6.
pub fn network_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4_network(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4_network(v4),
            None => Ipv6Net::new(v6, 64)
                .map(|net| net.trunc().to_string())
                .unwrap_or_else(|_| v6.to_string()),
        },
    }
}

fn v4_network(v4: std::net::Ipv4Addr) -> String {
    Ipv4Net::new(v4, 24)
        .map(|net| net.trunc().to_string())
        .unwrap_or_else(|_| v4.to_string())
}

/// Whether a login from a device last seen at `last_seen` (never: `None`) counts as a
/// new device at `now`.
pub fn is_new_device(last_seen: Option<Timestamp>, now: Timestamp) -> bool {
    match last_seen {
        None => true,
        Some(at) => at.plus(KNOWN_DEVICE_WINDOW) < now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIREFOX_LINUX: &str =
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    const CHROME_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) \
        AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

    #[test]
    fn names_read_like_a_user_would_say_them() {
        assert_eq!(
            Device::of(Some(FIREFOX_LINUX), None).name,
            "Firefox on Linux"
        );
        assert_eq!(Device::of(Some(CHROME_MAC), None).name, "Chrome on Mac OSX");
        assert_eq!(Device::of(Some("curl/8.5.0"), None).name, "HTTP Library");
        assert_eq!(Device::of(Some("\u{1}?"), None).name, "Unknown device");
        assert_eq!(Device::of(None, None).name, "Unknown device");
    }

    #[test]
    fn networks_are_slash_24_and_slash_64() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(network_of(ip("203.0.113.77")), "203.0.113.0/24");
        assert_eq!(network_of(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(network_of(ip("::ffff:203.0.113.9")), "203.0.113.0/24");
        assert_eq!(
            network_of(ip("2001:db8:1:2:ffff::9")),
            network_of(ip("2001:db8:1:2::1"))
        );
        assert_ne!(
            network_of(ip("2001:db8:1:3::1")),
            network_of(ip("2001:db8:1:2::1"))
        );
    }

    #[test]
    fn the_device_key_is_browser_os_and_network() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let home = Device::of(Some(FIREFOX_LINUX), ip("198.51.100.4"));
        let home_again = Device::of(Some(FIREFOX_LINUX), ip("198.51.100.200"));
        let cafe = Device::of(Some(FIREFOX_LINUX), ip("192.0.2.1"));
        let other_browser = Device::of(Some(CHROME_MAC), ip("198.51.100.4"));
        assert_eq!(home.key, home_again.key);
        assert_ne!(home.key, cafe.key);
        assert_ne!(home.key, other_browser.key);
    }

    #[test]
    fn a_device_is_new_when_unseen_for_ninety_days() {
        let now = Timestamp::from_unix_millis(1_000_000_000_000);
        assert!(is_new_device(None, now));
        assert!(!is_new_device(Some(now.minus(KNOWN_DEVICE_WINDOW)), now));
        assert!(is_new_device(
            Some(now.minus(KNOWN_DEVICE_WINDOW + Duration::from_millis(1))),
            now
        ));
    }
}
