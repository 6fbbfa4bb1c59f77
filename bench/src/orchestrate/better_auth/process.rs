//! The better-auth process: installed once per lockfile, its password hash timed, and
//! started pinned like the other servers.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::servers::{free_addr, pinned, ServerProcess};

/// Copy the peer's sources into `cache` and install its packages there with `npm ci`,
/// unless the same lockfile is installed already.
pub(super) fn prepare(source: &Path, cache: &Path) -> Result<()> {
    std::fs::create_dir_all(cache)?;
    let lock = std::fs::read(source.join("package-lock.json"))?;
    let marker = cache.join(".installed-lock.json");
    let installed = std::fs::read(&marker).is_ok_and(|done| done == lock);
    for name in ["package.json", "package-lock.json", "server.mjs"] {
        std::fs::copy(source.join(name), cache.join(name))
            .with_context(|| format!("copying {name}"))?;
    }
    if installed {
        return Ok(());
    }
    eprintln!("  npm ci in {} (compiles better-sqlite3)", cache.display());
    let log = std::fs::File::create(cache.join("npm-ci.log"))?;
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(cache)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .context("could not run npm")?;
    if !status.success() {
        bail!("npm ci failed in {} (see npm-ci.log)", cache.display());
    }
    std::fs::write(marker, lock)?;
    Ok(())
}

/// Median time of one better-auth password verification (scrypt) on the server core, ms.
pub(super) fn scrypt_ms_on_server_core(core: Option<usize>, dir: &Path) -> Result<f64> {
    let output = pinned(core, Path::new("node"), &["server.mjs", "--hash-time"])
        .current_dir(dir)
        .stderr(Stdio::inherit())
        .output()
        .context("could not time better-auth's password hash")?;
    if !output.status.success() {
        bail!("node server.mjs --hash-time failed");
    }
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .context("--hash-time printed no number")
}

pub(super) async fn start_better_auth(
    core: Option<usize>,
    dir: &Path,
    data: &Path,
) -> Result<ServerProcess> {
    std::fs::create_dir_all(data)?;
    let addr = free_addr()?;
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let mut command = pinned(core, Path::new("node"), &["server.mjs"]);
    command
        .current_dir(dir)
        .env("PORT", addr.port().to_string())
        .env("DB_FILE", data.join("better-auth.db"))
        .env("BETTER_AUTH_SECRET", secret)
        .env("NODE_ENV", "production");
    ServerProcess::start("better-auth", command, addr, data.join("server.log")).await
}
