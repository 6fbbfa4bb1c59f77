//! Table tests of parsing and `Config::validate`.

use super::*;

#[test]
fn the_cookie_is_secure_unless_auto_meets_a_loopback_http_issuer() {
    let cases = [
        (&["--issuer", "http://127.0.0.1:8080"][..], false),
        (&["--issuer", "http://localhost:8080/"][..], false),
        (&["--issuer", "http://[::1]:8080"][..], false),
        (&["--issuer", "https://127.0.0.1:8080"][..], true),
        (&["--issuer", "http://auth.example.com"][..], true),
        (&["--issuer", "https://auth.example.com"][..], true),
        (
            &[
                "--issuer",
                "http://127.0.0.1:8080",
                "--cookie-secure",
                "true",
            ][..],
            true,
        ),
        (
            &[
                "--issuer",
                "https://auth.example.com",
                "--cookie-secure",
                "false",
            ][..],
            false,
        ),
    ];
    for (args, secure) in cases {
        let config = config(args);
        assert_eq!(config.cookie_is_secure(), secure, "{args:?}");
        assert!(config
            .cookie_mode_explained()
            .contains("LATCHKEY_COOKIE_SECURE"));
    }
    assert!("maybe".parse::<CookieSecurity>().is_err());
}

#[test]
fn allowed_origins_lose_a_trailing_slash() {
    let config = config(&[
        "--allowed-origins",
        "http://localhost:3000/,https://app.example.com",
    ]);
    assert_eq!(
        config.allowed_origins,
        ["http://localhost:3000", "https://app.example.com"]
    );
}

#[test]
fn durations_parse_with_units() {
    assert_eq!(
        "15m".parse::<HumanDuration>().unwrap().0,
        Duration::from_secs(900)
    );
    assert_eq!(
        "7d".parse::<HumanDuration>().unwrap().0,
        Duration::from_secs(7 * 86400)
    );
    assert_eq!(
        "250ms".parse::<HumanDuration>().unwrap().0,
        Duration::from_millis(250)
    );
    for bad in ["", "15", "m", "1w", "-1s", "1.5h"] {
        assert!(bad.parse::<HumanDuration>().is_err(), "{bad}");
    }
}

#[derive(clap::Parser)]
struct Cli {
    #[command(flatten)]
    config: Config,
}

fn config(args: &[&str]) -> Config {
    use clap::Parser;
    let mut all = vec!["latchkey"];
    all.extend_from_slice(args);
    Cli::try_parse_from(all).unwrap().config
}

fn refused(config: &Config) -> &'static str {
    config.validate().expect_err("refused").setting
}

#[test]
fn the_defaults_are_valid() {
    config(&[]).validate().unwrap();
}

#[test]
fn plain_http_origins_are_refused_with_a_secure_cookie_unless_loopback() {
    for origin in [
        "http://app.example.com",
        "http://192.168.1.10:3000",
        "http://localhost.example.com",
        "http://[::2]:80",
    ] {
        let secure = config(&["--allowed-origins", origin, "--cookie-secure", "true"]);
        assert_eq!(refused(&secure), "LATCHKEY_ALLOWED_ORIGINS", "{origin}");
        let plain = config(&["--allowed-origins", origin, "--cookie-secure", "false"]);
        plain.validate().unwrap();
    }
    for origin in [
        "https://app.example.com",
        "http://localhost:3000",
        "http://LOCALHOST",
        "http://app.localhost:8080",
        "http://127.0.0.1:5173",
        "http://127.1.2.3",
        "http://[::1]:8000",
        "http://[::1]",
    ] {
        config(&["--allowed-origins", origin, "--cookie-secure", "true"])
            .validate()
            .unwrap_or_else(|e| panic!("{origin}: {e}"));
    }
}

#[test]
fn a_secure_cookie_lives_at_the_root_and_another_path_is_refused() {
    let secure = config(&["--cookie-secure", "true"]);
    assert_eq!(secure.refresh_cookie_name(), "__Host-latchkey_refresh");
    assert_eq!(secure.refresh_cookie_path(), "/");
    config(&["--cookie-secure", "true", "--cookie-path", "/"])
        .validate()
        .unwrap();
    assert_eq!(
        refused(&config(&[
            "--cookie-secure",
            "true",
            "--cookie-path",
            "/auth"
        ])),
        "LATCHKEY_COOKIE_PATH"
    );
    let plain = config(&["--cookie-secure", "false"]);
    assert_eq!(plain.refresh_cookie_name(), "latchkey_refresh");
    assert_eq!(plain.refresh_cookie_path(), "/auth");
    let moved = config(&["--cookie-secure", "false", "--cookie-path", "/api/auth"]);
    moved.validate().unwrap();
    assert_eq!(moved.refresh_cookie_path(), "/api/auth");
}

#[test]
fn timeouts_and_the_connection_limit_are_bounded() {
    for (flag, value, setting) in [
        ("--header-timeout", "0s", "LATCHKEY_HEADER_TIMEOUT"),
        ("--body-timeout", "50ms", "LATCHKEY_BODY_TIMEOUT"),
        ("--request-timeout", "1h", "LATCHKEY_REQUEST_TIMEOUT"),
        ("--max-connections", "0", "LATCHKEY_MAX_CONNECTIONS"),
    ] {
        assert_eq!(refused(&config(&[flag, value])), setting);
    }
}

#[test]
fn debug_shows_no_secret() {
    let config = config(&[
        "--algorithm",
        "HS256",
        "--hs256-secret",
        "hs256-secret-hs256-secret-hs256-secret",
        "--revocation-feed-secret",
        "feed-secret-feed-secret-feed-secret-feed",
        "--database-url",
        "postgres://latchkey:db-password@db.internal/latchkey",
        "--redis-url",
        "redis://:redis-password@cache.internal:6379",
    ]);
    config.validate().unwrap();
    let debug = format!("{config:?}");
    for secret in [
        "hs256-secret",
        "feed-secret",
        "db-password",
        "redis-password",
    ] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
}

#[test]
fn redact_url_hides_passwords_in_user_info_and_query() {
    let cases = [
        (
            "postgres://user:hunter2@db:5432/app",
            "postgres://user:***@db:5432/app",
        ),
        (
            "postgres://user@db/app?password=hunter2&sslmode=require",
            "postgres://user@db/app?password=***&sslmode=require",
        ),
        (
            "postgres://db/app?sslmode=verify-full&PassWord=hunter2",
            "postgres://db/app?sslmode=verify-full&PassWord=***",
        ),
        (
            "postgres://db/app?pass%77ord=hunter2",
            "postgres://db/app?pass%77ord=***",
        ),
        (
            "postgres://u:p%40ss@db/app?sslpassword=hunter2",
            "postgres://u:***@db/app?sslpassword=***",
        ),
        ("sqlite://latchkey.db", "sqlite://latchkey.db"),
        (
            "sqlite:///var/lib/latchkey.db?mode=rwc",
            "sqlite:///var/lib/latchkey.db?mode=rwc",
        ),
    ];
    for (url, redacted) in cases {
        assert_eq!(redact_url(url), redacted);
    }
}

#[test]
fn rate_specs_parse() {
    let spec: RateSpec = "10/1m".parse().unwrap();
    assert_eq!((spec.count, spec.period), (10, Duration::from_secs(60)));
    for bad in ["10", "0/1m", "10/0s", "x/1m"] {
        assert!(bad.parse::<RateSpec>().is_err(), "{bad}");
    }
}

/// Every rule of [`Config::validate`], each with the setting it names and the value
/// just inside the bound (which must pass, so the rule is where the table says).
#[test]
fn every_validation_rule_refuses_its_setting_and_accepts_the_boundary() {
    let s32 = "0123456789abcdef0123456789abcdef";
    let s31 = &s32[..31];
    let hs = ["--algorithm", "HS256", "--hs256-secret"];
    let refused_cases: &[(&[&str], &str)] = &[
        (&["--hs256-secret", s32], "LATCHKEY_HS256_SECRET"),
        (&[hs[0], hs[1], hs[2], s31], "LATCHKEY_HS256_SECRET"),
        (&["--access-ttl", "9s"], "LATCHKEY_ACCESS_TTL"),
        (
            &["--access-ttl", "25h", "--refresh-ttl", "7d"],
            "LATCHKEY_ACCESS_TTL",
        ),
        (
            &["--access-ttl", "1h", "--refresh-ttl", "1h"],
            "LATCHKEY_REFRESH_TTL",
        ),
        (&["--refresh-ttl", "31d"], "LATCHKEY_SESSION_LIFETIME"),
        (&["--reuse-grace", "121s"], "LATCHKEY_REUSE_GRACE"),
        (&["--leeway", "301s"], "LATCHKEY_LEEWAY"),
        (&["--issuer", " "], "LATCHKEY_ISSUER/LATCHKEY_AUDIENCE"),
        (&["--audience", ""], "LATCHKEY_ISSUER/LATCHKEY_AUDIENCE"),
        (&["--mfa-issuer", ""], "LATCHKEY_MFA_ISSUER"),
        (&["--mfa-issuer", "a:b"], "LATCHKEY_MFA_ISSUER"),
        (
            &["--admin-max-auth-age", "999ms"],
            "LATCHKEY_ADMIN_MAX_AUTH_AGE",
        ),
        (
            &["--admin-max-auth-age", "25h"],
            "LATCHKEY_ADMIN_MAX_AUTH_AGE",
        ),
        (
            &["--cookie-secure", "false", "--cookie-path", "auth"],
            "LATCHKEY_COOKIE_PATH",
        ),
        (
            &["--cookie-secure", "false", "--cookie-path", "/a;b"],
            "LATCHKEY_COOKIE_PATH",
        ),
        (
            &["--cookie-secure", "true", "--cookie-path", "/auth"],
            "LATCHKEY_COOKIE_PATH",
        ),
        (
            &["--allowed-origins", "ftp://a.example"],
            "LATCHKEY_ALLOWED_ORIGINS",
        ),
        (
            &["--allowed-origins", "https://*.example"],
            "LATCHKEY_ALLOWED_ORIGINS",
        ),
        (
            &["--allowed-origins", "https://a.example/app"],
            "LATCHKEY_ALLOWED_ORIGINS",
        ),
        (
            &[
                "--cookie-secure",
                "true",
                "--allowed-origins",
                "http://a.example",
            ],
            "LATCHKEY_ALLOWED_ORIGINS",
        ),
        (
            &["--revocation-feed-secret", s31],
            "LATCHKEY_REVOCATION_FEED_SECRET",
        ),
        (
            &[
                "--master-secret",
                s32,
                "--master-secret-file",
                "/nonexistent",
            ],
            "LATCHKEY_MASTER_SECRET/LATCHKEY_MASTER_SECRET_FILE",
        ),
        (&["--master-secret", s31], "LATCHKEY_MASTER_SECRET"),
        (
            &["--trust-forwarded-for", "true"],
            "LATCHKEY_TRUST_FORWARDED_FOR",
        ),
        (
            &["--login-free-failures", "0"],
            "LATCHKEY_LOGIN_FREE_FAILURES/LATCHKEY_LOGIN_ACCOUNT_CEILING",
        ),
        (
            &["--login-free-failures", "5", "--login-account-ceiling", "4"],
            "LATCHKEY_LOGIN_FREE_FAILURES/LATCHKEY_LOGIN_ACCOUNT_CEILING",
        ),
        (&["--hash-queue", "0"], "LATCHKEY_HASH_QUEUE"),
        (&["--hash-cpu-share", "4"], "LATCHKEY_HASH_CPU_SHARE"),
        (&["--hash-cpu-share", "101"], "LATCHKEY_HASH_CPU_SHARE"),
        (&["--header-timeout", "99ms"], "LATCHKEY_HEADER_TIMEOUT"),
        (&["--body-timeout", "601s"], "LATCHKEY_BODY_TIMEOUT"),
        (&["--request-timeout", "99ms"], "LATCHKEY_REQUEST_TIMEOUT"),
        (&["--max-connections", "0"], "LATCHKEY_MAX_CONNECTIONS"),
    ];
    for (args, setting) in refused_cases {
        assert_eq!(refused(&config(args)), *setting, "{args:?}");
    }
    let accepted_cases: &[&[&str]] = &[
        &[hs[0], hs[1], hs[2], s32],
        &["--access-ttl", "10s"],
        &["--access-ttl", "24h", "--refresh-ttl", "7d"],
        &["--access-ttl", "1h", "--refresh-ttl", "61m"],
        &["--refresh-ttl", "30d"],
        &["--reuse-grace", "120s"],
        &["--reuse-grace", "0s"],
        &["--leeway", "300s"],
        &["--mfa-issuer", "Acme Corp"],
        &["--admin-max-auth-age", "1s"],
        &["--admin-max-auth-age", "24h"],
        &["--cookie-secure", "false", "--cookie-path", "/auth"],
        &["--cookie-secure", "true", "--cookie-path", "/"],
        &["--allowed-origins", "https://a.example:8443"],
        &[
            "--cookie-secure",
            "true",
            "--allowed-origins",
            "http://localhost:3000",
        ],
        &["--revocation-feed-secret", s32],
        &["--master-secret", s32],
        &["--login-free-failures", "1", "--login-account-ceiling", "1"],
        &["--hash-queue", "1"],
        &["--hash-cpu-share", "5"],
        &["--hash-cpu-share", "100"],
        &["--header-timeout", "100ms"],
        &["--body-timeout", "600s"],
        &["--request-timeout", "10m"],
        &["--max-connections", "1"],
    ];
    for args in accepted_cases {
        let validated = config(args).validate();
        assert!(validated.is_ok(), "{args:?}: {validated:?}");
    }
}
