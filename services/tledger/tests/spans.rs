//! The I/O steps are spans named `<area>.<step>` that carry their ids and
//! never a secret: a command registers an official (a person's name, sent
//! with a bearer token), the store appends it, and the relay publishes the
//! ledger to NATS, all under a subscriber that records every span and event
//! on this thread (the runtime is current-thread, so the service's tasks
//! run here too). Against the shared PostgreSQL and NATS.
//!
//! A binary of its own: which spans a callsite records is cached for the
//! whole process, so a subscriber set for one thread does not see every
//! span while other tests run on other threads without one.

mod support;

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use tledger::relay::Relay;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

const NATS_URL: &str = "nats://127.0.0.1:4222";

/// A span or event as recorded: its name and every field, as text.
#[derive(Clone, Debug)]
struct Recorded {
    name: String,
    fields: Vec<(String, String)>,
}

impl Recorded {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Records every span (with the fields recorded on it later) and event.
#[derive(Clone, Default)]
struct Recorder {
    spans: Arc<Mutex<Vec<Recorded>>>,
    events: Arc<Mutex<Vec<Recorded>>>,
}

/// Where a span's record is in [`Recorder::spans`].
#[derive(Clone, Copy)]
struct Index(usize);

struct Fields<'a>(&'a mut Vec<(String, String)>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
}

fn locked(records: &Mutex<Vec<Recorded>>) -> MutexGuard<'_, Vec<Recorded>> {
    records.lock().expect("the recorder's lock")
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Vec::new();
        attrs.record(&mut Fields(&mut fields));
        let mut spans = locked(&self.spans);
        let index = spans.len();
        spans.push(Recorded {
            name: attrs.metadata().name().to_owned(),
            fields,
        });
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Index(index));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let Some(Index(index)) = span.extensions().get::<Index>().copied() else {
            return;
        };
        let mut fields = Vec::new();
        values.record(&mut Fields(&mut fields));
        if let Some(recorded) = locked(&self.spans).get_mut(index) {
            recorded.fields.extend(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Vec::new();
        event.record(&mut Fields(&mut fields));
        locked(&self.events).push(Recorded {
            name: event.metadata().name().to_owned(),
            fields,
        });
    }
}

#[tokio::test]
async fn the_append_and_the_publish_are_spans_with_their_ids_and_no_secret() {
    let recorder = Recorder::default();
    let _recording =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(recorder.clone()));

    let ledger = support::spawn_app().await;
    // Registers units and the official `o-1`, "Nguyễn Văn A", with the
    // admin's bearer token.
    ledger.seed().await;
    ledger.projected().await;

    let (_client, jetstream) = tledger::startup::connect_nats(NATS_URL)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let relay = Relay::new(
        ledger.store.clone(),
        jetstream.clone(),
        ledger.commands.prefix().clone(),
    );
    relay.ensure_stream().await.expect("the events stream");
    while relay.try_execute_task().await.expect("publish") > 0 {}
    jetstream
        .delete_stream(relay.stream_name())
        .await
        .expect("delete the test's stream");

    let spans = locked(&recorder.spans).clone();
    let events = locked(&recorder.events).clone();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert!(
        spans.iter().any(|s| s.name == "store.append"
            && s.field("aggregate") == Some("official")
            && s.field("aggregate_id") == Some("o-1")
            && s.field("events") == Some("1")),
        "no store.append span for o-1 among {names:?}"
    );
    assert!(
        spans
            .iter()
            .any(|s| s.name == "relay.publish" && s.field("events").is_some_and(|n| n != "0")),
        "no relay.publish span among {names:?}"
    );
    for secret in [ledger.admin.as_str(), "Nguyễn Văn A"] {
        for recorded in spans.iter().chain(&events) {
            for (field, value) in &recorded.fields {
                assert!(
                    !value.contains(secret),
                    "{} records {secret:?} in its field {field}: {value}",
                    recorded.name
                );
            }
        }
    }
}
