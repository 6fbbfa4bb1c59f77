//! How admin commands print: aligned tables for people, `--json` for scripts, and one
//! line per failure on standard error.

use std::fmt::Write as _;

use anyhow::anyhow;
use latchkey::http::ApiError;
use latchkey::service::AuthError;
use serde::Serialize;

/// Rows under a header, each column as wide as its widest cell.
#[derive(Debug)]
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these column names.
    pub(crate) fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Add a row (one cell per column).
    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, columns separated by two spaces, no trailing blanks.
    pub(crate) fn render(&self) -> String {
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(width) = widths.get_mut(i) {
                    *width = (*width).max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let width = widths.get(i).copied().unwrap_or(0);
                let _ = write!(line, "{cell:<width$}  ");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Print the table to standard output.
    pub(crate) fn print(&self) {
        print!("{}", self.render());
    }
}

/// Print `value` as pretty JSON on standard output.
pub(crate) fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A use-case failure as one line with its stable code, the same code the HTTP API
/// answers with (`this would leave no enabled admin [last_admin]`). Store and internal
/// failures keep their own words (they carry no code a script could act on).
pub(crate) fn auth_error(error: AuthError) -> anyhow::Error {
    match error {
        AuthError::Store(_) | AuthError::Internal(_) => anyhow!(error),
        other => {
            let message = other.to_string();
            let code = ApiError::from(other).code();
            anyhow!("{message} [{code}]")
        }
    }
}

/// An error and its causes on one line, each cause once: a cause whose text the line
/// holds already (errors that print their source) is not repeated.
pub(crate) fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let cause = cause.to_string();
        if !line.contains(&cause) {
            line.push_str(": ");
            line.push_str(&cause);
        }
    }
    line
}

/// `yes` or `no`.
pub(crate) fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_owned()
}

/// An optional value, or `-`.
pub(crate) fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or("-").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_aligned_without_trailing_blanks() {
        let mut table = Table::new(&["EMAIL", "ROLES"]);
        table.row(vec!["a@example.com".into(), "admin".into()]);
        table.row(vec!["zoë@example.com".into(), "user".into()]);
        assert_eq!(
            table.render(),
            "EMAIL            ROLES\n\
             a@example.com    admin\n\
             zoë@example.com  user\n"
        );
    }

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot open: {0}")]
        struct Outer(#[source] std::io::Error);
        let error = anyhow::Error::new(Outer(std::io::Error::other("disk gone")));
        assert_eq!(one_line(&error), "cannot open: disk gone");
        let error = anyhow!("plain").context("outer");
        assert_eq!(one_line(&error), "outer: plain");
    }
}
