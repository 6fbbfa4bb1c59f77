//! The second peer, better-auth (`bench/peers/better-auth`), side by side with Latchkey
//! in one run: a fresh Latchkey (EdDSA, and the same with its verified-token cache off)
//! and better-auth both running pinned to the server core, measured in alternating
//! rounds on the protected request and refresh (the two targets), then once each on
//! sign-in and sign-up; each side's password hash timed on the server core.
//!
//! better-auth is installed once per lockfile under `target/bench-peers/better-auth`
//! (`npm ci` compiles better-sqlite3's SQLite, about two minutes here) and reused while
//! `package-lock.json` is unchanged.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;

use super::{
    argon2_ms_on_server_core, load_average, register_and_log_in, rest_mib, start_latchkey, Bench,
};
use crate::api::{Api, Creds, PASSWORD};
use crate::client::Response;
use crate::peers::{self, Request};
use crate::scenarios::{self, Target};

mod process;
mod render;

use process::{prepare, scrypt_ms_on_server_core, start_better_auth};

use super::compare::{compare, Run, Side};

const PROTECTED_CONNECTIONS: usize = 64;
const REFRESH_CLIENTS: usize = 32;
const LOGIN_CONNECTIONS: usize = 8;
const USERS: usize = 32;

/// Options of `all` for the better-auth peer.
#[derive(Debug, clap::Args)]
pub(crate) struct BetterAuthOptions {
    /// Skip the better-auth peer.
    #[arg(long)]
    pub(crate) no_better_auth: bool,
    /// The better-auth peer's sources [default: `bench/peers/better-auth`].
    #[arg(long)]
    pub(crate) better_auth_dir: Option<PathBuf>,
}

impl BetterAuthOptions {
    /// The peer's sources, unless skipped or missing (then with a note why).
    pub(crate) fn source(&self) -> Option<PathBuf> {
        if self.no_better_auth {
            return None;
        }
        let dir = self
            .better_auth_dir
            .clone()
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/better-auth"));
        if dir.join("server.mjs").exists() {
            Some(dir)
        } else {
            eprintln!(
                "note: no better-auth peer at {}; skipping it",
                dir.display()
            );
            None
        }
    }
}

fn latchkey_register_body(creds: &Creds) -> Vec<u8> {
    Api::Latchkey.register_body(creds)
}

/// What the section reports besides the comparisons.
#[derive(Debug, Clone)]
pub(crate) struct HashTimes {
    /// Argon2id verification on the server core, ms (before and after the sign-in runs).
    pub(crate) argon2_ms: (f64, f64),
    /// better-auth's scrypt verification on the server core, ms (before and after).
    pub(crate) scrypt_ms: (f64, f64),
}

/// Run the comparison and return its Markdown section.
pub(super) async fn run(bench: &mut Bench<'_>, tmp: &Path, source: &Path) -> Result<String> {
    let settings = bench.settings;
    let core = settings.server_core;
    let timing = settings.timing;
    let rounds = settings.rounds;
    let load_before = load_average();
    let cache = settings
        .self_bin
        .parent()
        .and_then(Path::parent)
        .unwrap_or(tmp)
        .join("bench-peers/better-auth");
    eprintln!("== better-auth (installed in {})", cache.display());
    prepare(source, &cache)?;

    let lk_dir = tmp.join("latchkey-vs-better-auth");
    let lk_server = start_latchkey(
        settings,
        "Latchkey EdDSA",
        "EdDSA",
        &lk_dir,
        &[],
        "server.log",
    )
    .await?;
    let lk_rest = rest_mib(&lk_server).await;
    let lk_target = Target {
        addr: lk_server.addr,
        api: Api::Latchkey,
    };
    let (lk_users, lk_token) = register_and_log_in(lk_target, USERS).await?;
    let off_server = start_latchkey(
        settings,
        "Latchkey EdDSA, cache off",
        "EdDSA",
        &lk_dir,
        &[("LATCHKEY_VERIFIED_TOKEN_CACHE", "0")],
        "server-cache-off.log",
    )
    .await?;
    let off_rest = rest_mib(&off_server).await;
    let off_target = Target {
        addr: off_server.addr,
        api: Api::Latchkey,
    };

    let ba_server = start_better_auth(core, &cache, &tmp.join("better-auth")).await?;
    let ba_rest = rest_mib(&ba_server).await;
    let ba = ba_server.addr;
    let ba_users: Vec<Creds> = (0..USERS).map(Creds::bench).collect();
    eprintln!("  signing up {USERS} better-auth users");
    peers::sign_up_all(ba, &ba_users, 8).await?;
    let mut sessions = Vec::new();
    for user in &ba_users {
        sessions.push(peers::sign_in(ba, user).await?.bearer);
    }
    let session = sessions[0].clone();
    let ba_jwt = peers::jwt(
        ba,
        &peers::Session {
            bearer: session.clone(),
        },
    )
    .await?;
    let sessions: Arc<[Arc<str>]> = sessions.into();

    let protected_on = |target: Target| -> Run<'static> {
        let token = lk_token.clone();
        Box::new(move || {
            let token = token.clone();
            Box::pin(async move {
                Ok(scenarios::protected(
                    target,
                    token,
                    PROTECTED_CONNECTIONS,
                    timing.for_protected(),
                )
                .await)
            })
        })
    };
    let get = |path: &'static str, token: Arc<str>, ok: fn(&Response) -> bool| -> Run<'static> {
        Box::new(move || {
            let token = token.clone();
            Box::pin(async move {
                Ok(peers::closed_loop(
                    ba,
                    PROTECTED_CONNECTIONS,
                    timing.for_protected(),
                    move |_, _| Request::Get(path, token.clone()),
                    ok,
                )
                .await)
            })
        })
    };
    let protected = compare(
        bench,
        "protected request",
        PROTECTED_CONNECTIONS,
        rounds,
        &[
            Side {
                name: "Latchkey EdDSA: GET /auth/me",
                server: &lk_server,
                rest: lk_rest,
                peer: false,
                run: protected_on(lk_target),
            },
            Side {
                name: "Latchkey EdDSA, cache off: GET /auth/me",
                server: &off_server,
                rest: off_rest,
                peer: false,
                run: protected_on(off_target),
            },
            Side {
                name: "better-auth: JWT verified with jose + JWKS",
                server: &ba_server,
                rest: ba_rest,
                peer: true,
                run: get(peers::RESOURCE, ba_jwt.clone(), peers::success),
            },
            Side {
                name: "better-auth: getSession (bearer)",
                server: &ba_server,
                rest: ba_rest,
                peer: true,
                run: get(peers::GET_SESSION, session.clone(), peers::json_object),
            },
        ],
    )
    .await?;
    off_server.stop();

    let lk_refresh: Run<'_> = Box::new(|| {
        let users = lk_users.clone();
        Box::pin(async move {
            scenarios::refresh_chains(lk_target, &users, REFRESH_CLIENTS, timing).await
        })
    });
    let ba_refresh: Run<'_> = Box::new(|| {
        let sessions = sessions.clone();
        Box::pin(async move {
            Ok(peers::closed_loop(
                ba,
                REFRESH_CLIENTS,
                timing,
                move |worker, _| {
                    Request::Get(peers::TOKEN, sessions[worker % sessions.len()].clone())
                },
                peers::json_object,
            )
            .await)
        })
    });
    let refresh = compare(
        bench,
        "refresh",
        REFRESH_CLIENTS,
        rounds,
        &[
            Side {
                name: "Latchkey EdDSA: refresh chains (rotation)",
                server: &lk_server,
                rest: lk_rest,
                peer: false,
                run: lk_refresh,
            },
            Side {
                name: "better-auth: GET /api/auth/token (new JWT)",
                server: &ba_server,
                rest: ba_rest,
                peer: true,
                run: ba_refresh,
            },
        ],
    )
    .await?;

    let argon2_before = argon2_ms_on_server_core(settings)?;
    let scrypt_before = scrypt_ms_on_server_core(core, &cache)?;
    let lk_login: Run<'_> = Box::new(|| {
        let users = lk_users.clone();
        Box::pin(async move {
            Ok(scenarios::logins(lk_target, &users, LOGIN_CONNECTIONS, timing.for_logins()).await)
        })
    });
    let ba_login: Run<'_> = Box::new(|| {
        let users = ba_users.clone();
        Box::pin(async move {
            Ok(peers::closed_loop(
                ba,
                LOGIN_CONNECTIONS,
                timing.for_logins(),
                move |worker, n| {
                    Request::Post(
                        peers::SIGN_IN,
                        peers::sign_in_body(
                            &users[(worker + n as usize * LOGIN_CONNECTIONS) % users.len()],
                        ),
                    )
                },
                peers::json_object,
            )
            .await)
        })
    });
    let sign_in = compare(
        bench,
        "sign-in",
        LOGIN_CONNECTIONS,
        1,
        &[
            Side {
                name: "Latchkey EdDSA: POST /auth/login",
                server: &lk_server,
                rest: lk_rest,
                peer: false,
                run: lk_login,
            },
            Side {
                name: "better-auth: POST /api/auth/sign-in/email",
                server: &ba_server,
                rest: ba_rest,
                peer: true,
                run: ba_login,
            },
        ],
    )
    .await?;
    let sign_up_on = |addr,
                      path: &'static str,
                      body: fn(&Creds) -> Vec<u8>,
                      side: &'static str|
     -> Run<'static> {
        Box::new(move || {
            Box::pin(async move {
                Ok(peers::closed_loop(
                    addr,
                    LOGIN_CONNECTIONS,
                    timing.for_logins(),
                    move |worker, n| {
                        let email = format!("signup-{side}-{worker}-{n}@bench.example");
                        let creds = Creds {
                            email,
                            password: PASSWORD.to_owned(),
                        };
                        Request::Post(path, body(&creds))
                    },
                    peers::success,
                )
                .await)
            })
        })
    };
    let sign_up = compare(
        bench,
        "sign-up",
        LOGIN_CONNECTIONS,
        1,
        &[
            Side {
                name: "Latchkey EdDSA: POST /auth/register",
                server: &lk_server,
                rest: lk_rest,
                peer: false,
                run: sign_up_on(
                    lk_server.addr,
                    "/auth/register",
                    latchkey_register_body,
                    "lk",
                ),
            },
            Side {
                name: "better-auth: POST /api/auth/sign-up/email",
                server: &ba_server,
                rest: ba_rest,
                peer: true,
                run: sign_up_on(ba, peers::SIGN_UP, peers::sign_up_body, "ba"),
            },
        ],
    )
    .await?;
    let hashes = HashTimes {
        argon2_ms: (argon2_before, argon2_ms_on_server_core(settings)?),
        scrypt_ms: (scrypt_before, scrypt_ms_on_server_core(core, &cache)?),
    };
    lk_server.stop();
    ba_server.stop();
    Ok(render::section(
        &[protected, refresh, sign_in, sign_up],
        &hashes,
        (&load_before, &load_average()),
    ))
}
