//! Servers under test as child processes: started pinned to a core with `taskset`, their
//! memory read from `/proc/<pid>/status`, stopped with SIGTERM (then SIGKILL).

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A free loopback port (bound, read and released; fine on a quiet machine).
pub(crate) fn free_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("no free port")?;
    Ok(listener.local_addr()?)
}

/// `program args...`, under `taskset -c core` when `core` is given.
pub(crate) fn pinned(core: Option<usize>, program: &Path, args: &[&str]) -> Command {
    match core {
        Some(core) => {
            let mut command = Command::new("taskset");
            command
                .arg("-c")
                .arg(core.to_string())
                .arg(program)
                .args(args);
            command
        }
        None => {
            let mut command = Command::new(program);
            command.args(args);
            command
        }
    }
}

/// Pin this process (all its threads) to `core`. Call before starting any runtime, so
/// that threads created later inherit the mask.
pub(crate) fn pin_self(core: usize) -> Result<()> {
    let status = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &core.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .context("could not run taskset (util-linux)")?;
    if !status.success() {
        bail!("taskset could not pin the load generator to core {core}");
    }
    Ok(())
}

/// User plus system CPU time of process `pid` (`"self"` for this one), in clock ticks.
pub(crate) fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux).
pub(crate) fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Resident memory of a process, KiB.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Memory {
    /// `VmRSS`: resident now.
    pub(crate) rss_kib: u64,
    /// `VmHWM`: the peak since start or since the last [`ServerProcess::reset_peak`].
    pub(crate) peak_kib: u64,
}

/// A running server.
pub(crate) struct ServerProcess {
    /// For messages.
    pub(crate) name: String,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    child: Option<Child>,
    log: PathBuf,
}

impl ServerProcess {
    /// Start `command` (stdout and stderr to `log`) and wait until `addr` accepts
    /// connections.
    pub(crate) async fn start(
        name: impl Into<String>,
        mut command: Command,
        addr: SocketAddr,
        log: PathBuf,
    ) -> Result<Self> {
        let name = name.into();
        let out = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("could not start {name}"))?;
        let mut server = Self {
            name,
            addr,
            child: Some(child),
            log,
        };
        server.wait_ready(Duration::from_secs(60)).await?;
        Ok(server)
    }

    /// A server started by the caller, already listening.
    pub(crate) fn adopt(
        name: impl Into<String>,
        child: Child,
        addr: SocketAddr,
        log: PathBuf,
    ) -> Self {
        Self {
            name: name.into(),
            addr,
            child: Some(child),
            log,
        }
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    bail!(
                        "{} exited at start-up ({status}); its log:\n{}",
                        self.name,
                        self.log_tail()
                    );
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not listen on {} in time; its log:\n{}",
                    self.name,
                    self.addr,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The process id (`taskset` execs the server, so this is the server's).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `VmRSS` and `VmHWM` now.
    pub(crate) fn memory(&self) -> Result<Memory> {
        let pid = self.pid().context("the server is not running")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let field = |name: &str| -> Option<u64> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
        };
        Ok(Memory {
            rss_kib: field("VmRSS:").context("no VmRSS")?,
            peak_kib: field("VmHWM:").context("no VmHWM")?,
        })
    }

    /// Reset `VmHWM` to the current RSS (`echo 5 > /proc/<pid>/clear_refs`), so that the
    /// next [`ServerProcess::memory`] shows the peak of what ran in between. Returns
    /// false if the kernel refused (the peak then covers the whole process life).
    pub(crate) fn reset_peak(&self) -> bool {
        self.pid()
            .is_some_and(|pid| std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok())
    }

    /// Send SIGTERM and return at once (see [`ServerProcess::wait_exit`]).
    pub(crate) fn terminate(&self) -> Result<()> {
        let pid = self.pid().context("the server is not running")?;
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM {pid} failed");
        }
        Ok(())
    }

    /// Wait up to `timeout` for the process to exit: its exit status, or `None` if it
    /// is still running.
    pub(crate) async fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Stop with SIGTERM, wait up to 5 s, then SIGKILL.
    pub(crate) fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.shutdown();
    }
}
