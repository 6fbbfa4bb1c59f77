//! Tokens verify in another language's standard library: PyJWT against our JWKS.

use std::process::Stdio;

use latchkey_store::testing::skip;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::helpers::*;

fn python() -> String {
    std::env::var("LATCHKEY_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

async fn pyjwt_available() -> bool {
    let probe = Command::new(python())
        .args(["-c", "import jwt, cryptography"])
        .output()
        .await;
    match probe {
        Ok(output) if output.status.success() => true,
        _ => {
            skip(format_args!(
                "PyJWT with cryptography is not importable by {}: pip install \
                 'PyJWT[crypto]', or set LATCHKEY_TEST_PYTHON to a Python that has it",
                python()
            ));
            false
        }
    }
}

#[tokio::test]
async fn pyjwt_verifies_latchkey_tokens() {
    if !pyjwt_available().await {
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../interop/pyjwt_verify.py");
    for algorithm in ["EdDSA", "ES256", "RS256"] {
        let app = spawn_app(&["--algorithm", algorithm]).await;
        let first = app.user_with_session("py@example.com").await;
        let second = app.login_body("py@example.com").await;
        let mut child = Command::new(python())
            .arg(script)
            .args([
                &app.url("/.well-known/jwks.json"),
                "https://auth.test",
                "test-api",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let input = format!("{}\n{}\n", first.access, second.access);
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .await
            .unwrap();
        let output = child.wait_with_output().await.unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{algorithm}: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert_eq!(
            stdout
                .lines()
                .filter(|l| l.starts_with(&format!("ok {algorithm} ")))
                .count(),
            2,
            "{stdout}"
        );
    }
}
