//! A real SMTP server for the e-mail tests: Python's aiosmtpd (`support/smtp_sink.py`)
//! in a child process, writing each message it receives into a directory the tests
//! read. Python comes from `LATCHKEY_TEST_PYTHON`, else the venv `.ci/run` makes at
//! `target/interop-venv`, else `python3`. Without aiosmtpd the tests skip with a note,
//! or fail under `CI=true`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use latchkey_store::testing::skip;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn python() -> String {
    if let Ok(python) = std::env::var("LATCHKEY_TEST_PYTHON") {
        return python;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/interop-venv/bin/python");
    if venv.exists() {
        return venv.to_string_lossy().into_owned();
    }
    "python3".to_owned()
}

/// Whether aiosmtpd is importable; otherwise the test [`skip`]s (fails under `CI=true`).
pub async fn available() -> bool {
    let probe = Command::new(python())
        .args(["-c", "import aiosmtpd"])
        .output()
        .await;
    match probe {
        Ok(output) if output.status.success() => true,
        _ => {
            skip(format_args!(
                "aiosmtpd is not importable by {}: pip install aiosmtpd, or set \
                 LATCHKEY_TEST_PYTHON to a Python that has it",
                python()
            ));
            false
        }
    }
}

/// A free TCP port on 127.0.0.1 (nothing listens on it once this returns).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A running SMTP sink.
pub struct Sink {
    child: Child,
    pub port: u16,
}

impl Sink {
    /// Start a sink writing into `dir`, on `port` or a free one.
    pub async fn start(dir: &Path, port: Option<u16>) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/support/smtp_sink.py");
        let mut command = Command::new(python());
        command
            .arg(script)
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if let Some(port) = port {
            command.arg(port.to_string());
        }
        let mut child = command.spawn().expect("start the SMTP sink");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).await.unwrap();
        let port = line.trim().parse().expect("the sink prints its port");
        Self { child, port }
    }

    /// The URL Latchkey sends to.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stop the sink (this child process only).
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A delivered mail.
#[derive(Debug, Clone)]
pub struct Mail {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl Mail {
    /// The token of the link to `page` (`reset`, `verify`) in the text body.
    pub fn token(&self, page: &str) -> String {
        let marker = format!("/{page}?token=");
        let start = self.text.find(&marker).expect("a link") + marker.len();
        self.text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect()
    }
}

impl Mail {
    /// The whole link to `page` (`reset`, `verify`) in the text body, as a person would
    /// click it.
    pub fn link(&self, page: &str) -> String {
        let marker = format!("/{page}?token=");
        self.text
            .split_whitespace()
            .find(|word| word.contains(&marker))
            .unwrap_or_else(|| panic!("no {page} link in {}", self.text))
            .trim_end_matches(['.', ',', ')', '>'])
            .to_owned()
    }
}

fn parse(path: &Path) -> Mail {
    let raw = std::fs::read(path).unwrap();
    let message = mailparse::parse_mail(&raw).unwrap();
    let header = |name: &str| {
        message
            .headers
            .iter()
            .find(|h| h.get_key().eq_ignore_ascii_case(name))
            .map(|h| h.get_value())
            .unwrap_or_default()
    };
    let mut text = String::new();
    let mut html = String::new();
    for part in message.parts() {
        match part.ctype.mimetype.as_str() {
            "text/plain" => text = part.get_body().unwrap(),
            "text/html" => html = part.get_body().unwrap(),
            _ => {}
        }
    }
    let to = header("To");
    Mail {
        to: to.trim_matches(['<', '>']).to_owned(),
        subject: header("Subject"),
        text,
        html,
    }
}

/// Every mail delivered into `dir` so far, oldest first.
pub fn mails(dir: &Path) -> Vec<Mail> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    files.sort_by_key(|p| {
        let modified = std::fs::metadata(p).and_then(|m| m.modified()).ok();
        (modified, p.clone())
    });
    files.iter().map(|p| parse(p)).collect()
}

/// Wait (up to 20 s, polling) until `count` mails to `to` whose subject contains
/// `subject` have arrived; return them.
pub async fn wait_for(dir: &Path, to: &str, subject: &str, count: usize) -> Vec<Mail> {
    for _ in 0..400 {
        let found: Vec<Mail> = mails(dir)
            .into_iter()
            .filter(|m| m.to == to && m.subject.contains(subject))
            .collect();
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "no {count} mail(s) {subject:?} to {to}; delivered: {:?}",
        mails(dir)
            .iter()
            .map(|m| (&m.to, &m.subject))
            .collect::<Vec<_>>()
    );
}

/// The mails to `to` whose subject contains `subject`.
pub fn delivered(dir: &Path, to: &str, subject: &str) -> Vec<Mail> {
    mails(dir)
        .into_iter()
        .filter(|m| m.to == to && m.subject.contains(subject))
        .collect()
}
