//! The NATS adapter for commands: request-reply on `<prefix>.cmd.<name>`.
//!
//! The request carries the body and the headers `Authorization: Bearer
//! <token>`, `Nats-Msg-Id` (the idempotency key) and optionally
//! `X-Correlation-Id`; the reply carries the same JSON body as HTTP and the
//! HTTP status in the header `Tledger-Status` (`Status` is NATS's own).
//! Subscribers form a queue group, so several service processes share the
//! load.

use std::future::Future;

use async_nats::HeaderMap;
use futures::StreamExt;
use tokio::task::JoinSet;

use crate::commands::{CommandRequest, CommandService};
use crate::web::bearer;
use crate::Prefix;

#[derive(Debug, thiserror::Error)]
pub enum NatsCommandError {
    #[error("subscribing to {subject}: {source}")]
    Subscribe {
        subject: String,
        #[source]
        source: async_nats::SubscribeError,
    },
}

fn header(headers: Option<&HeaderMap>, name: &str) -> Option<String> {
    headers?.get(name).map(|v| v.as_str().to_owned())
}

/// Answers commands until `shutdown`; in-flight commands finish first.
pub async fn serve(
    client: async_nats::Client,
    prefix: Prefix,
    commands: CommandService,
    shutdown: impl Future<Output = ()>,
) -> Result<(), NatsCommandError> {
    let subject = prefix.command_subject("*");
    let mut requests = client
        .queue_subscribe(subject.clone(), "tledger-commands".into())
        .await
        .map_err(|source| NatsCommandError::Subscribe {
            subject: subject.clone(),
            source,
        })?;
    let command_prefix = prefix.command_subject("");
    let mut in_flight = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            message = requests.next() => {
                let Some(message) = message else { break };
                let Some(reply_to) = message.reply.clone() else { continue };
                let name = message.subject.as_str().strip_prefix(&command_prefix).unwrap_or_default().to_owned();
                let headers = message.headers.as_ref();
                let request = CommandRequest {
                    name,
                    body: message.payload.clone(),
                    bearer: bearer(header(headers, "Authorization").as_deref()),
                    idempotency_key: header(headers, "Nats-Msg-Id"),
                    correlation_id: header(headers, "X-Correlation-Id"),
                };
                let commands = commands.clone();
                let client = client.clone();
                in_flight.spawn(async move {
                    let answer = commands.execute(request).await;
                    let mut headers = HeaderMap::new();
                    headers.insert("Tledger-Status", answer.status.to_string().as_str());
                    headers.insert("Content-Type", "application/json");
                    let body = answer.body.to_string();
                    if let Err(error) = client.publish_with_headers(reply_to, headers, body.into()).await {
                        tracing::warn!(%error, "could not send a command reply");
                    }
                });
            }
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    let _ = requests.unsubscribe().await;
    while in_flight.join_next().await.is_some() {}
    let _ = client.flush().await;
    Ok(())
}
