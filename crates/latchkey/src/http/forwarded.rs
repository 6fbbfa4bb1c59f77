//! Which address a request comes from, when proxies stand in front of Latchkey.
//!
//! The chain is every `X-Forwarded-For` entry, header lines joined in order, then the
//! socket address. Each proxy appends the address it received the request from, so only
//! the entries that trusted proxies appended can be believed; anything further left may
//! be whatever the client sent. A client that sends its own `X-Forwarded-For` line (or
//! a second one) only adds entries on the left, which are never reached while the
//! entries on the right are the proxies' own.

use std::net::IpAddr;

use axum::http::HeaderMap;

use crate::config::TrustedProxies;

/// The client's address: the socket address unless trusted proxies say otherwise.
pub(super) fn client_address(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: Option<&TrustedProxies>,
) -> Option<IpAddr> {
    let (Some(trusted), Some(peer)) = (trusted, peer) else {
        return peer;
    };
    // Right to left: the socket address first, then the forwarded entries.
    let mut chain = vec![Some(peer)];
    let entries: Vec<Option<IpAddr>> = headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|line| {
            let text = line.to_str().unwrap_or("");
            text.split(',')
                .map(|entry| parse_entry(entry.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    chain.extend(entries.into_iter().rev());
    match trusted {
        TrustedProxies::Hops(hops) => {
            // With n proxies the client is n places from the right; a shorter chain did
            // not come through all of them.
            match chain.get(usize::from(*hops)) {
                Some(Some(client)) => Some(*client),
                _ => Some(peer),
            }
        }
        TrustedProxies::Networks(networks) => {
            let is_proxy = |ip: &IpAddr| networks.iter().any(|net| net.contains(ip));
            let mut client = peer;
            for entry in chain {
                match entry {
                    Some(ip) if is_proxy(&ip) => client = ip,
                    Some(ip) => return Some(ip),
                    // Unreadable entry behind trusted proxies: stop at the last proxy.
                    None => return Some(client),
                }
            }
            Some(client)
        }
    }
}

/// Whether the connection itself comes from a trusted proxy (so headers the proxy sets,
/// such as `x-request-id`, can be believed): with a hop count, any peer; with networks,
/// a peer inside one of them.
pub(super) fn peer_is_trusted_proxy(
    peer: Option<IpAddr>,
    trusted: Option<&TrustedProxies>,
) -> bool {
    match (trusted, peer) {
        (Some(TrustedProxies::Hops(hops)), Some(_)) => *hops > 0,
        (Some(TrustedProxies::Networks(networks)), Some(peer)) => {
            let peer = peer.to_canonical();
            networks.iter().any(|net| net.contains(&peer))
        }
        _ => false,
    }
}

/// One entry: an address, possibly with a port (`203.0.113.7:4711`, `[2001:db8::1]:80`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append("x-forwarded-for", HeaderValue::from_str(line).unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(s: &str) -> TrustedProxies {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_socket_address_counts() {
        let h = headers(&["198.51.100.1"]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, None),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn one_hop_takes_the_last_entry_across_header_lines() {
        let one = proxies("1");
        // The proxy appended a second line; the client's own line is on the left.
        let h = headers(&["6.6.6.6", "203.0.113.9"]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, Some(&one)),
            Some(ip("203.0.113.9"))
        );
        let h = headers(&["6.6.6.6, 203.0.113.9"]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, Some(&one)),
            Some(ip("203.0.113.9"))
        );
        // No header: the request did not come through the proxy.
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &HeaderMap::new(), Some(&one)),
            Some(ip("10.0.0.1"))
        );
        let two = proxies("2");
        let h = headers(&["6.6.6.6, 203.0.113.9, 10.0.0.2"]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, Some(&two)),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn networks_take_the_rightmost_untrusted_address() {
        let trusted = proxies("10.0.0.0/8, 192.168.1.7");
        let h = headers(&["6.6.6.6", "203.0.113.9, 192.168.1.7", "10.1.2.3"]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, Some(&trusted)),
            Some(ip("203.0.113.9"))
        );
        // A peer that is not a trusted proxy is the client, whatever it forwards.
        assert_eq!(
            client_address(Some(ip("198.51.100.4")), &h, Some(&trusted)),
            Some(ip("198.51.100.4"))
        );
        // Junk behind the proxies: the last proxy is as far as we can see.
        let h = headers(&["not-an-address"]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, Some(&trusted)),
            Some(ip("10.0.0.1"))
        );
        let h = headers(&["[2001:db8::5]:443"]);
        assert_eq!(
            client_address(Some(ip("10.0.0.1")), &h, Some(&trusted)),
            Some(ip("2001:db8::5"))
        );
    }

    #[test]
    fn trusted_proxy_settings_parse() {
        assert_eq!(proxies("2"), TrustedProxies::Hops(2));
        assert!("0".parse::<TrustedProxies>().is_err());
        assert!("17".parse::<TrustedProxies>().is_err());
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("".parse::<TrustedProxies>().is_err());
        assert!(matches!(proxies("::1,10.0.0.0/8"), TrustedProxies::Networks(n) if n.len() == 2));
    }
}
