//! `latchkey webhooks …`: post a signed test message to every configured endpoint, and
//! list the messages not delivered (yet).

use anyhow::bail;
use clap::Subcommand;
use latchkey::service::AuthService;
use latchkey::webhooks::{send_test, WebhookConfig};
use serde::Serialize;

use super::output::{auth_error, or_dash, print_json, Table};
use super::Output;

/// `latchkey webhooks …`.
#[derive(Debug, Subcommand)]
pub(crate) enum WebhooksCommand {
    /// Post a signed test message (type `webhook.test`) to each LATCHKEY_WEBHOOK_URL now
    /// and print how each answered; fails unless every one answered 2xx.
    Test,
    /// List the messages not delivered yet (queued, retrying) or given up, newest first.
    Status {
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// `latchkey webhooks test`.
pub(crate) async fn test(config: &WebhookConfig, output: Output) -> anyhow::Result<()> {
    #[derive(Serialize)]
    struct Delivery {
        url: String,
        delivered: bool,
        status: Option<u16>,
        error: Option<String>,
    }
    let deliveries: Vec<Delivery> = send_test(config)
        .await?
        .into_iter()
        .map(|d| Delivery {
            url: d.url,
            delivered: d.outcome.is_ok(),
            status: d.outcome.as_ref().ok().copied(),
            error: d.outcome.err(),
        })
        .collect();
    let failed = deliveries.iter().filter(|d| !d.delivered).count();
    if output.json {
        #[derive(Serialize)]
        struct Deliveries {
            deliveries: Vec<Delivery>,
        }
        print_json(&Deliveries { deliveries })?;
    } else {
        let mut table = Table::new(&["URL", "RESULT"]);
        for delivery in &deliveries {
            let result = match (&delivery.status, &delivery.error) {
                (Some(status), _) => format!("delivered (HTTP {status})"),
                (None, error) => format!("failed: {}", or_dash(error.as_deref())),
            };
            table.row(vec![delivery.url.clone(), result]);
        }
        table.print();
    }
    if failed > 0 {
        bail!("{failed} endpoint(s) did not accept the test message");
    }
    Ok(())
}

/// `latchkey webhooks status`.
pub(crate) async fn status(
    service: &AuthService,
    limit: u32,
    output: Output,
) -> anyhow::Result<()> {
    let messages = service
        .undelivered_webhooks(limit)
        .await
        .map_err(auth_error)?;
    #[derive(Serialize)]
    struct Message {
        id: String,
        endpoint: String,
        event_type: String,
        created_at: String,
        attempts: u32,
        next_attempt_at: Option<String>,
        failed_at: Option<String>,
        last_error: Option<String>,
    }
    let messages: Vec<Message> = messages
        .into_iter()
        .map(|m| Message {
            id: m.message_id,
            endpoint: m.endpoint,
            event_type: m.event_type,
            created_at: m.created_at.to_rfc3339(),
            attempts: m.attempts,
            next_attempt_at: m.next_attempt_at.map(|t| t.to_rfc3339()),
            failed_at: m.failed_at.map(|t| t.to_rfc3339()),
            last_error: m.last_error,
        })
        .collect();
    if output.json {
        #[derive(Serialize)]
        struct Messages {
            messages: Vec<Message>,
        }
        return print_json(&Messages { messages });
    }
    let mut table = Table::new(&["ID", "TYPE", "ENDPOINT", "ATTEMPTS", "STATE", "LAST ERROR"]);
    for m in messages {
        let state = match (&m.failed_at, &m.next_attempt_at) {
            (Some(at), _) => format!("failed {at}"),
            (None, Some(at)) => format!("next try {at}"),
            (None, None) => "-".to_owned(),
        };
        table.row(vec![
            m.id,
            m.event_type,
            m.endpoint,
            m.attempts.to_string(),
            state,
            or_dash(m.last_error.as_deref()),
        ]);
    }
    table.print();
    Ok(())
}
