//! The settings of the pages served by the binary (`LATCHKEY_UI_*`), apart from the
//! HTTP layer that serves them, so the config can hold them without depending on it.

use clap::Args;

/// The settings of the pages.
#[derive(Debug, Clone, Args)]
pub struct UiSettings {
    /// Serve the sign-in and account pages at `/`, `/account`, `/reset` and `/verify`.
    #[arg(long = "ui", env = "LATCHKEY_UI", default_value_t = true, action = clap::ArgAction::Set)]
    pub enabled: bool,
    /// The app name the pages show (at most 60 characters).
    #[arg(long = "ui-app-name", env = "LATCHKEY_UI_APP_NAME", default_value = "Latchkey", value_parser = parse_app_name)]
    pub app_name: String,
    /// A logo shown beside the name: an `https://` URL, or a path on this server.
    #[arg(long = "ui-logo-url", env = "LATCHKEY_UI_LOGO_URL", value_parser = parse_logo_url)]
    pub logo_url: Option<String>,
    /// The accent colour of buttons and focus rings, as `#rgb` or `#rrggbb`.
    #[arg(long = "ui-accent", env = "LATCHKEY_UI_ACCENT", default_value = "#1d4ed8", value_parser = parse_accent)]
    pub accent: String,
}

pub(crate) fn parse_accent(value: &str) -> Result<String, String> {
    rgb(value)
        .map(|_| value.to_owned())
        .ok_or_else(|| format!("{value:?}: expected a colour like #1d4ed8"))
}

pub(crate) fn parse_app_name(value: &str) -> Result<String, String> {
    let name = value.trim();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return Err("the app name must be 1 to 60 characters, with no control characters".into());
    }
    Ok(name.to_owned())
}

pub(crate) fn parse_logo_url(value: &str) -> Result<String, String> {
    let safe = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| {
                c.is_ascii_graphic() && !matches!(c, '"' | '\'' | ';' | ',' | '<' | '>' | '\\')
            })
    };
    let ok = match value.strip_prefix("https://") {
        Some(rest) => safe(rest) && !rest.starts_with('/'),
        None => value.starts_with('/') && !value.starts_with("//") && safe(value),
    };
    if ok {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?}: expected an https:// URL or a path on this server, like /logo.svg"
        ))
    }
}

/// The red, green and blue of `#rgb` or `#rrggbb`.
pub(crate) fn rgb(colour: &str) -> Option<(u8, u8, u8)> {
    let hex = colour.strip_prefix('#')?;
    if !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let digit = |i: usize, width: usize| u8::from_str_radix(hex.get(i..i + width)?, 16).ok();
    match hex.len() {
        3 => Some((digit(0, 1)? * 17, digit(1, 1)? * 17, digit(2, 1)? * 17)),
        6 => Some((digit(0, 2)?, digit(2, 2)?, digit(4, 2)?)),
        _ => None,
    }
}
