//! OAuth clients (resource services) allowed to introspect and revoke tokens, from
//! `LATCHKEY_CLIENTS` (`id:secret,id2:secret2`).
//!
//! Only a SHA-256 of each secret is kept; a presented secret is hashed and compared in
//! constant time. An unknown client id costs the same comparison against a dummy, so
//! timing does not tell which ids exist. The secrets are random strings chosen by the
//! operator (16 characters or more), not passwords, so a fast hash suffices.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{digest, SHA256};

/// Shortest accepted client secret.
const MIN_SECRET_CHARS: usize = 16;

/// The configured clients: ids with the SHA-256 of their secrets.
#[derive(Clone, Default)]
pub struct OAuthClients {
    clients: Vec<(String, Vec<u8>)>,
}

impl std::fmt::Debug for OAuthClients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.clients.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("OAuthClients").field("ids", &ids).finish()
    }
}

fn hash(secret: &str) -> Vec<u8> {
    digest(&SHA256, secret.as_bytes()).as_ref().to_vec()
}

impl OAuthClients {
    /// Parse `id:secret,id2:secret2`. The error names the problem, never a secret.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut clients: Vec<(String, Vec<u8>)> = Vec::new();
        for (index, entry) in text.split(',').map(str::trim).enumerate() {
            if entry.is_empty() {
                continue;
            }
            let Some((id, secret)) = entry.split_once(':') else {
                return Err(format!("entry {} is not id:secret", index + 1));
            };
            let id = id.trim();
            let valid_id = !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !valid_id {
                return Err(format!(
                    "entry {}: a client id is 1 to 64 letters, digits, '-', '_' or '.'",
                    index + 1
                ));
            }
            if secret.chars().count() < MIN_SECRET_CHARS {
                return Err(format!(
                    "the secret of client {id} is shorter than {MIN_SECRET_CHARS} characters"
                ));
            }
            if clients.iter().any(|(known, _)| known == id) {
                return Err(format!("client {id} is listed twice"));
            }
            clients.push((id.to_owned(), hash(secret)));
        }
        Ok(Self { clients })
    }

    /// Whether `id` is a configured client and `secret` its secret.
    pub fn authenticate(&self, id: &str, secret: &str) -> bool {
        let presented = hash(secret);
        match self.clients.iter().find(|(known, _)| known == id) {
            Some((_, expected)) => verify_slices_are_equal(expected, &presented).is_ok(),
            None => {
                // The same work as for a known id.
                let _ = verify_slices_are_equal(&hash(""), &presented);
                false
            }
        }
    }

    /// Whether no client is configured.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::OAuthClients;

    #[test]
    fn clients_authenticate_with_their_own_secret_only() {
        let clients =
            OAuthClients::parse("api:0123456789abcdef, worker:fedcba9876543210xyz").unwrap();
        assert!(clients.authenticate("api", "0123456789abcdef"));
        assert!(clients.authenticate("worker", "fedcba9876543210xyz"));
        assert!(!clients.authenticate("api", "fedcba9876543210xyz"));
        assert!(!clients.authenticate("nobody", "0123456789abcdef"));
        assert!(!format!("{clients:?}").contains("0123"));
    }

    #[test]
    fn bad_lists_are_refused_without_echoing_secrets() {
        for bad in [
            "api",
            "api:short",
            ":0123456789abcdef",
            "a b:0123456789abcdef",
        ] {
            let error = OAuthClients::parse(bad).unwrap_err();
            assert!(
                !error.contains("short") || error.contains("shorter"),
                "{error}"
            );
            assert!(!error.contains("0123456789abcdef"), "{error}");
        }
        let twice = "api:0123456789abcdef,api:0123456789abcdeg";
        assert!(OAuthClients::parse(twice).is_err());
    }
}
