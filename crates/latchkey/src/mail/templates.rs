//! Mail templates: a subject, a plain-text and an HTML body per mail, rendered with
//! minijinja. The defaults are built in; a file of the same name in
//! `LATCHKEY_MAIL_TEMPLATES` replaces one of them. HTML templates escape what they
//! insert (by the `.html` extension); text templates do not.

use std::path::Path;

use minijinja::Environment;
use serde_json::Value;

/// Which mails there are: each has `<kind>.subject.txt`, `<kind>.txt` and `<kind>.html`.
#[cfg(test)]
const KINDS: [&str; 9] = [
    "password_reset",
    "verify_email",
    "change_email",
    "email_change_requested",
    "password_changed",
    "new_device",
    "refresh_reuse",
    "mfa_disabled",
    "registration_attempted",
];

macro_rules! builtin {
    ($kind:literal) => {
        (
            $kind,
            [
                include_str!(concat!("templates/", $kind, ".subject.txt")),
                include_str!(concat!("templates/", $kind, ".txt")),
                include_str!(concat!("templates/", $kind, ".html")),
            ],
        )
    };
}

const BUILTIN: [(&str, [&str; 3]); 9] = [
    builtin!("password_reset"),
    builtin!("verify_email"),
    builtin!("change_email"),
    builtin!("email_change_requested"),
    builtin!("password_changed"),
    builtin!("new_device"),
    builtin!("refresh_reuse"),
    builtin!("mfa_disabled"),
    builtin!("registration_attempted"),
];

const PARTS: [&str; 3] = ["subject.txt", "txt", "html"];

/// A template that does not parse or a file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("mail template {name}: {reason}")]
pub struct TemplateError {
    /// The file name.
    pub name: String,
    /// What is wrong.
    pub reason: String,
}

/// A rendered mail.
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    pub(crate) subject: String,
    pub(crate) text: String,
    pub(crate) html: String,
}

/// The parsed templates.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The built-in templates, each replaced by the file of the same name in `overrides`
    /// if there is one. Every template is parsed now, so a broken one stops the start.
    pub fn load(overrides: Option<&Path>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        for (kind, sources) in BUILTIN {
            for (part, builtin) in PARTS.iter().zip(sources) {
                let name = format!("{kind}.{part}");
                let source = match overrides.map(|dir| dir.join(&name)) {
                    Some(path) if path.exists() => {
                        std::fs::read_to_string(&path).map_err(|e| TemplateError {
                            name: name.clone(),
                            reason: e.to_string(),
                        })?
                    }
                    _ => builtin.to_owned(),
                };
                env.add_template_owned(name.clone(), source)
                    .map_err(|e| TemplateError {
                        name,
                        reason: e.to_string(),
                    })?;
            }
        }
        Ok(Self { env })
    }

    /// Render mail `kind` with `vars`.
    pub(crate) fn render(&self, kind: &str, vars: &Value) -> Result<Rendered, TemplateError> {
        let part = |part: &str| {
            let name = format!("{kind}.{part}");
            self.env
                .get_template(&name)
                .and_then(|t| t.render(minijinja::value::Serde(vars)))
                .map_err(|e| TemplateError {
                    name,
                    reason: e.to_string(),
                })
        };
        Ok(Rendered {
            subject: part("subject.txt")?
                .lines()
                .next()
                .unwrap_or_default()
                .trim()
                .to_owned(),
            text: part("txt")?,
            html: part("html")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_renders_and_html_is_escaped() {
        let templates = Templates::load(None).unwrap();
        let vars = serde_json::json!({
            "email": "a<b>@example.com", "link": "https://x/reset?token=abc",
            "ttl_minutes": 30, "device": "Firefox on Linux", "ip": "203.0.113.9",
            "at": "2026-01-01T00:00:00Z", "new_email": "n@example.com",
        });
        for kind in KINDS {
            let mail = templates.render(kind, &vars).unwrap();
            assert!(!mail.subject.is_empty(), "{kind}");
            assert!(!mail.html.contains("a<b>"), "{kind}");
        }
        let reset = templates.render("password_reset", &vars).unwrap();
        assert!(reset.text.contains("https://x/reset?token=abc"));
        assert!(reset.text.contains("a<b>@example.com"));
    }

    #[test]
    fn a_file_in_the_override_directory_replaces_the_builtin() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("password_reset.subject.txt"),
            "Hi {{ email }}",
        )
        .unwrap();
        let templates = Templates::load(Some(dir.path())).unwrap();
        let vars = serde_json::json!({ "email": "a@example.com", "link": "l", "ttl_minutes": 1 });
        let mail = templates.render("password_reset", &vars).unwrap();
        assert_eq!(mail.subject, "Hi a@example.com");
        std::fs::write(dir.path().join("new_device.txt"), "{% if %}").unwrap();
        assert!(Templates::load(Some(dir.path())).is_err());
    }
}
