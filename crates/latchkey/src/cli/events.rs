//! `latchkey events tail`: the newest security events and, with `--follow`, each new one
//! as it is recorded. The store is only read (polled), like `user list`.
//!
//! Following does not read "events after the last id": on PostgreSQL ids are handed out
//! in insertion order, not commit order, so such a cursor would skip an event whose
//! transaction commits late. Each poll reads again the last [`OVERLAP`] of the log (by
//! event time) and prints what it has not printed yet.

use std::collections::BTreeSet;
use std::time::Duration;

use clap::{Args, Subcommand};
use latchkey::config::HumanDuration;
use latchkey::service::{AuthService, EventView};
use latchkey_core::model::UserId;
use latchkey_core::store::{EventPosition, LoggedEvent};
use latchkey_core::time::Timestamp;
use serde::Serialize;

use super::output::{auth_error, or_dash};
use super::users::find;
use super::Output;

/// How far behind the newest event a poll looks again for events committed late.
const OVERLAP: Duration = Duration::from_secs(30);

/// Events read per query while following.
const PAGE: u32 = 500;

/// `latchkey events …`.
#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// Print the newest security events, oldest first; with --follow, keep printing new
    /// ones as they are recorded. --json prints one JSON object per line.
    Tail(TailArgs),
}

/// `latchkey events tail` options.
#[derive(Debug, Args)]
pub(crate) struct TailArgs {
    /// Only the events of this user (an e-mail address).
    #[arg(long)]
    user: Option<String>,
    /// Keep printing new events until interrupted.
    #[arg(long, short = 'f')]
    follow: bool,
    /// How many of the newest events to print first.
    #[arg(long, short = 'n', default_value_t = 20)]
    lines: u32,
    /// With --follow: how often to look for new events.
    #[arg(long, default_value = "1s")]
    every: HumanDuration,
}

impl EventsCommand {
    /// Run it.
    pub(crate) async fn run(self, service: &AuthService, output: Output) -> anyhow::Result<()> {
        let Self::Tail(args) = self;
        let user = match &args.user {
            Some(email) => Some(find(service, email).await?.id),
            None => None,
        };
        let printer = Printer { json: output.json };
        let newest = service
            .logged_events(user, None, args.lines)
            .await
            .map_err(auth_error)?;
        printer.header();
        let start = newest
            .last()
            .map_or_else(|| latchkey::clock::Clock::system().now(), |e| e.position.at);
        let mut seen = Seen::new(start);
        for event in &newest {
            seen.first_sight(event.position);
            printer.print(event)?;
        }
        if !args.follow {
            return Ok(());
        }
        // What is in the window now but older than the lines asked for stays unprinted.
        read_window(service, user, &mut seen, |_| Ok(())).await?;
        loop {
            tokio::time::sleep(args.every.0.max(Duration::from_millis(50))).await;
            read_window(service, user, &mut seen, |event| printer.print(event)).await?;
        }
    }
}

/// Read the log from [`OVERLAP`] before the newest event seen, page by page, handing
/// each event not seen yet to `each`.
async fn read_window(
    service: &AuthService,
    user: Option<UserId>,
    seen: &mut Seen,
    mut each: impl FnMut(&LoggedEvent) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut after = seen.from();
    loop {
        let page = service
            .logged_events(user, Some(after), PAGE)
            .await
            .map_err(auth_error)?;
        for event in &page {
            if seen.first_sight(event.position) {
                each(event)?;
            }
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize => after = last.position,
            _ => break,
        }
    }
    seen.forget_old();
    Ok(())
}

/// What a follower has printed: the newest event time, and every position printed in
/// the window before it.
#[derive(Debug)]
struct Seen {
    newest: Timestamp,
    printed: BTreeSet<EventPosition>,
}

impl Seen {
    fn new(newest: Timestamp) -> Self {
        Self {
            newest,
            printed: BTreeSet::new(),
        }
    }

    /// Where the next read starts: [`OVERLAP`] before the newest event seen.
    fn from(&self) -> EventPosition {
        EventPosition {
            at: self.newest.minus(OVERLAP),
            id: i64::MIN,
        }
    }

    /// Note `position`; whether it is new.
    fn first_sight(&mut self, position: EventPosition) -> bool {
        self.newest = self.newest.max(position.at);
        self.printed.insert(position)
    }

    /// Forget positions before the window: they are never read again.
    fn forget_old(&mut self) {
        self.printed = self.printed.split_off(&self.from());
    }
}

/// Prints events as aligned lines (fixed widths, as rows keep coming) or JSON lines.
#[derive(Debug, Clone, Copy)]
struct Printer {
    json: bool,
}

/// One event as `--json` prints it.
#[derive(Serialize)]
struct JsonEvent<'a> {
    #[serde(flatten)]
    event: EventView,
    email: Option<&'a str>,
}

impl Printer {
    fn header(self) {
        if !self.json {
            println!(
                "{:<24}  {:<26}  {:<28}  {:<15}  {:<20}  DETAIL",
                "AT", "KIND", "USER", "IP", "DEVICE"
            );
        }
    }

    fn print(self, logged: &LoggedEvent) -> anyhow::Result<()> {
        let email = logged.email.as_ref().map(|e| e.as_str());
        let view = EventView::from(logged.event.clone());
        if self.json {
            let line = serde_json::to_string(&JsonEvent { event: view, email })?;
            println!("{line}");
            return Ok(());
        }
        let user = email.map_or_else(
            || or_dash(view.user_id.map(|id| id.to_string()).as_deref()),
            str::to_owned,
        );
        let line = format!(
            "{:<24}  {:<26}  {:<28}  {:<15}  {:<20}  {}",
            view.at,
            view.kind,
            user,
            or_dash(view.client_ip.as_deref()),
            or_dash(view.device.as_deref()),
            or_dash(view.detail.as_deref()),
        );
        println!("{}", line.trim_end());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: i64, id: i64) -> EventPosition {
        EventPosition {
            at: Timestamp::from_unix_millis(millis),
            id,
        }
    }

    #[test]
    fn a_late_commit_inside_the_window_is_printed_once() {
        let mut seen = Seen::new(Timestamp::from_unix_millis(100_000));
        assert!(seen.first_sight(at(100_000, 7)));
        assert!(!seen.first_sight(at(100_000, 7)));
        // Id 5 committed after id 7, with an earlier time: still new.
        assert!(seen.first_sight(at(99_000, 5)));
        assert_eq!(seen.from(), at(70_000, i64::MIN));
        assert!(seen.first_sight(at(130_000, 9)));
        seen.forget_old();
        assert_eq!(seen.from(), at(100_000, i64::MIN));
        assert!(!seen.first_sight(at(100_000, 7)), "still in the window");
        assert_eq!(seen.printed.len(), 2);
    }
}
