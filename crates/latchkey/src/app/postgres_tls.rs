//! A warning for a PostgreSQL database reached over the network without TLS.

/// `Some(warning)` when `url` reaches PostgreSQL on another host without requiring TLS
/// (`sslmode=require`, `verify-ca` or `verify-full`, in the URL or `PGSSLMODE`): the
/// default, `prefer`, falls back to plain text, so anyone on the path can downgrade it.
pub(super) fn postgres_tls_warning(url: &str, pgsslmode: Option<String>) -> Option<String> {
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))?;
    let (authority_and_path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = authority_and_path.split('/').next().unwrap_or("");
    let hosts = authority
        .rsplit_once('@')
        .map_or(authority, |(_, hosts)| hosts);
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.to_ascii_lowercase())
    };
    let sslmode = param("sslmode").or(pgsslmode.map(|m| m.to_ascii_lowercase()));
    if sslmode.is_some_and(|m| matches!(m.as_str(), "require" | "verify-ca" | "verify-full")) {
        return None;
    }
    let host_param = param("host");
    let mut names: Vec<&str> = hosts.split(',').map(host_of).collect();
    if let Some(host) = host_param.as_deref() {
        names.push(host);
    }
    let remote = names.iter().any(|host| {
        let host = host.trim_matches(['[', ']']);
        !(host.is_empty()
            || host.starts_with('/')
            || host.starts_with("%2f")
            || host.starts_with("%2F")
            || host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback()))
    });
    remote.then(|| {
        "the PostgreSQL database is on another host and TLS is not required: \
         add sslmode=verify-full (or require) to LATCHKEY_DATABASE_URL"
            .to_owned()
    })
}

/// The host of `host[:port]` (IPv6 literals in brackets).
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        authority
            .split_once(']')
            .map_or(authority, |(host, _)| &host[1..])
    } else {
        authority.split(':').next().unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_postgres_without_required_tls_is_warned_about() {
        for url in [
            "postgres://u:p@db.example.com/app",
            "postgresql://db.example.com:5432/app?sslmode=prefer",
            "postgres://u@10.0.0.5/app?sslmode=disable",
            "postgres://u@[2001:db8::1]:5432/app",
            "postgres://localhost,db.example.com/app",
            "postgres:///app?host=db.example.com",
        ] {
            assert!(postgres_tls_warning(url, None).is_some(), "{url}");
        }
        for url in [
            "postgres://u:p@db.example.com/app?sslmode=verify-full",
            "postgres://db.example.com/app?application_name=x&SSLMODE=require",
            "postgres://db.example.com/app?sslmode=verify-ca",
            "postgres://u:p@localhost/app",
            "postgres://u:p@127.0.0.1:5432/app",
            "postgres://[::1]/app",
            "postgres:///app?host=/var/run/postgresql",
            "sqlite://latchkey.db",
        ] {
            assert!(postgres_tls_warning(url, None).is_none(), "{url}");
        }
        let remote = "postgres://db.example.com/app";
        assert!(postgres_tls_warning(remote, Some("verify-full".into())).is_none());
        assert!(postgres_tls_warning(remote, Some("prefer".into())).is_some());
    }
}
