//! The serving process: [`build`] connects and binds, [`App::port`] tells
//! tests where it listens (they bind port 0), [`App::run_until_stopped`]
//! runs every component until the shutdown future completes.
//!
//! Shutdown is staged so that nothing in flight is lost: first the HTTP
//! server, the NATS command listener and the policies stop taking work and
//! finish what they hold (a command waits for its position, so the
//! sequencer must still run); then the sequencer sequences what committed
//! and stops; then the relay publishes that and stops. Each stage has a
//! time limit, so that a stuck client or NATS being down cannot make the
//! process hang on SIGTERM.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tledger_store::{Sequenced, Sequencer, Store};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch, Notify};
use tokio::task::JoinSet;

use crate::access::Access;
use crate::checkpoint_signing::CheckpointSigning;
use crate::commands::CommandService;
use crate::config::Settings;
use crate::ingest::stream::IngestConsumer;
use crate::ingest::Intake;
use crate::publishers::Publishers;
use crate::relay::{Relay, RelayWatch};
use crate::startup::{self, StartupError};
use crate::web::Deadlines;
use crate::web::{router, WebState};
use crate::Prefix;
use tledger_events::checkpoint::CheckpointVerifier;
use tledger_projections::reports::ReadModels;

/// How often the sequencer looks for commits nobody announced (another
/// process's, a bulk import's).
const SEQUENCER_IDLE: Duration = Duration::from_millis(200);
/// How often the projector looks for sequenced events nobody announced.
const PROJECTOR_IDLE: Duration = Duration::from_millis(500);
/// The least time between the starts of two projection batches, and of two
/// qualification policy batches: under load each takes what several
/// sequencer batches sequenced, for the statements of one (ADR 18).
const READER_GAP: Duration = Duration::from_millis(10);
/// How long in-flight HTTP and NATS commands get to finish.
const FRONT_GRACE: Duration = Duration::from_secs(30);
/// How long the sequencer gets for its last batches.
const SEQUENCER_GRACE: Duration = Duration::from_secs(30);
/// How long the relay gets to publish its last batch (NATS may be down).
const RELAY_GRACE: Duration = Duration::from_secs(10);
/// How often the Prometheus recorder drains its histograms.
const METRICS_UPKEEP: Duration = Duration::from_secs(5);
/// Sequencer announcements buffered for slow listeners (a listener that
/// lags falls back to reading positions).
const ANNOUNCE_CAPACITY: usize = 1024;

/// What the callers of the one wiring vary. The binary serves with
/// [`Wiring::service`]; the in-process tests serve the same ledger with
/// short HTTP deadlines, without NATS, and drive the policy themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wiring {
    /// The time limits of every HTTP request.
    pub deadlines: Deadlines,
    /// Whether NATS is part of the world: the relay, the signed checkpoints
    /// (and the dashboard's verification with their key), the ingest
    /// consumer and the NATS command listener. Without it no relay runs:
    /// `/v1/ledger/head` and `/readyz` show what a relay started by hand
    /// reports to [`App::relay_watch`].
    pub nats: bool,
    /// Whether the qualification policy runs by itself (a test that steps
    /// it with `CommandService::policy_step` must be alone in doing so).
    pub policies: bool,
    /// Whether migrating records the shipped reference data directly, as
    /// `tledger migrate` does; otherwise the caller publishes it.
    pub shipped_reference: bool,
    /// How often the sequencer looks for commits nobody announced.
    pub sequencer_idle: Duration,
    /// How often the projector looks for sequenced events nobody announced.
    pub projector_idle: Duration,
}

impl Wiring {
    /// The service as `tledger serve` runs it.
    pub fn service() -> Self {
        Self {
            deadlines: Deadlines {
                head: crate::web::HEADER_READ_TIMEOUT,
                body: crate::web::BODY_READ_TIMEOUT,
            },
            nats: true,
            policies: true,
            shipped_reference: true,
            sequencer_idle: SEQUENCER_IDLE,
            projector_idle: PROJECTOR_IDLE,
        }
    }
}

/// The write side over one store: token storage, the command service, and
/// the sequencer's wake-up and announcements that tie commits to positions.
/// The service, `tledger import` and the tests make it here, so that a
/// command is answered the same way wherever it comes in.
pub struct WriteSide {
    pub access: Access,
    pub commands: CommandService,
    /// Rung by every commit, so the sequencer need not wait for its idle look.
    pub wake: Arc<Notify>,
    /// The sequencer's announcements of what it sequenced.
    pub sequenced: broadcast::Sender<Arc<Sequenced>>,
}

/// [`WriteSide`] over `store`, its facts under `prefix`.
pub fn write_side(store: &Store, prefix: &Prefix) -> WriteSide {
    let access = Access::new(store.clone());
    let wake = Arc::new(Notify::new());
    let (sequenced, _) = broadcast::channel(ANNOUNCE_CAPACITY);
    let commands = CommandService::new(
        store.clone(),
        access.clone(),
        prefix.clone(),
        wake.clone(),
        sequenced.clone(),
    );
    WriteSide {
        access,
        commands,
        wake,
        sequenced,
    }
}

/// A built, not yet running, service.
pub struct App {
    listener: TcpListener,
    address: SocketAddr,
    store: Store,
    access: Access,
    commands: CommandService,
    nats: Option<NatsSide>,
    relay_watch: RelayWatch,
    prefix: Prefix,
    metrics: PrometheusHandle,
    wake: Arc<Notify>,
    sequenced: broadcast::Sender<Arc<Sequenced>>,
    intake: Intake,
    park_for: Duration,
    wiring: Wiring,
}

/// What runs only when NATS is part of the world ([`Wiring::nats`]).
struct NatsSide {
    client: async_nats::Client,
    jetstream: async_nats::jetstream::Context,
    relay: Relay,
    checkpointer: CheckpointSigning,
    ingest: IngestConsumer,
    verifier: CheckpointVerifier,
}

/// Why the service stopped with an error: each component that failed (or
/// stopped by itself, which it should not), on one line.
#[derive(Debug, thiserror::Error)]
#[error("{}", failures.join("; "))]
pub struct RunError {
    pub failures: Vec<String>,
}

/// The service as `tledger serve` runs it: [`build_with`] and
/// [`Wiring::service`].
pub async fn build(settings: &Settings) -> Result<App, StartupError> {
    build_with(settings, Wiring::service()).await
}

/// Connects to PostgreSQL (creating the database if missing) and migrates
/// it, connects to NATS and makes sure the stream exists (when `wiring`
/// has NATS), and binds the HTTP listener (port 0 picks a free port).
/// Nothing runs yet.
pub async fn build_with(settings: &Settings, wiring: Wiring) -> Result<App, StartupError> {
    let store = startup::ensure_database(&settings.database_url).await?;
    if wiring.shipped_reference {
        startup::migrate(&store).await?;
    } else {
        store.migrate().await?;
    }
    tledger_projections::projector::ensure_schema(store.pool(), tledger_projections::schema::LIVE)
        .await
        .map_err(|e| StartupError::ReadModels(e.to_string()))?;
    let nats = if wiring.nats {
        Some(connect_nats_side(settings, &store).await?)
    } else {
        None
    };
    let listener = TcpListener::bind(settings.http_addr)
        .await
        .map_err(|source| StartupError::Bind {
            addr: settings.http_addr,
            source,
        })?;
    let address = listener.local_addr().map_err(|source| StartupError::Bind {
        addr: settings.http_addr,
        source,
    })?;
    let WriteSide {
        access,
        commands,
        wake,
        sequenced,
    } = write_side(&store, &settings.prefix);
    if let Some(nats) = &nats {
        // Every fact must fit the server's max_payload once wrapped.
        let max_payload = nats.client.server_info().max_payload;
        commands.set_max_payload(max_payload);
        tracing::info!(max_payload, "facts must fit the NATS server's max_payload");
    }
    let intake = Intake::new(
        store.clone(),
        commands.clone(),
        Publishers::new(store.clone()),
    );
    let relay_watch = nats
        .as_ref()
        .map_or_else(RelayWatch::default, |nats| nats.relay.watch());
    Ok(App {
        listener,
        address,
        store,
        access,
        commands,
        nats,
        relay_watch,
        prefix: settings.prefix.clone(),
        metrics: crate::telemetry::metrics(),
        wake,
        sequenced,
        intake,
        park_for: Duration::from_secs(settings.park_seconds),
        wiring,
    })
}

/// The signing key, NATS, the events stream and the ingest stream.
async fn connect_nats_side(settings: &Settings, store: &Store) -> Result<NatsSide, StartupError> {
    let signer =
        crate::checkpoint_signing::load_or_create_signing_key(&settings.signing_key_path, store)
            .await?;
    // The dashboard verifies the ledger with the key the service signs with.
    let verifier = signer.verifier();
    let (client, jetstream) = startup::connect_nats(&settings.nats_url).await?;
    let checkpointer = CheckpointSigning::new(
        store.clone(),
        signer,
        settings.checkpoint_events,
        Duration::from_secs(settings.checkpoint_seconds),
    )
    .announcing(client.clone(), settings.prefix.checkpoint_subject());
    let replicas = usize::try_from(settings.stream_replicas).unwrap_or(1);
    let relay = Relay::new(store.clone(), jetstream.clone(), settings.prefix.clone())
        .with_replicas(replicas);
    relay.ensure_stream().await?;
    let ingest = crate::ingest::stream::ensure(
        &jetstream,
        &settings.prefix,
        crate::ingest::stream::DEFAULT_DUPLICATE_WINDOW,
        replicas,
    )
    .await?;
    Ok(NatsSide {
        client,
        jetstream,
        relay,
        checkpointer,
        ingest,
        verifier,
    })
}

/// A stop signal that any number of tasks can wait on.
struct Stop(watch::Sender<bool>);

impl Stop {
    fn new() -> Self {
        Self(watch::channel(false).0)
    }

    fn trigger(&self) {
        self.0.send_replace(true);
    }

    /// Completes once triggered (or once the `Stop` is gone).
    fn wait(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.subscribe();
        async move {
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
    }
}

/// A component's name and how it ended.
type Outcome = (&'static str, Result<(), String>);

impl App {
    /// The bound HTTP port.
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// The bound HTTP address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Token storage; shares its verification cache with the running
    /// service, so a revocation made through it takes effect at once.
    pub fn access(&self) -> &Access {
        &self.access
    }

    pub fn intake(&self) -> &Intake {
        &self.intake
    }

    pub fn commands(&self) -> &CommandService {
        &self.commands
    }

    /// The NATS connection; `None` when built without NATS.
    pub fn nats(&self) -> Option<&async_nats::Client> {
        self.nats.as_ref().map(|nats| &nats.client)
    }

    /// What `/v1/ledger/head` and `/readyz` show of a relay: the running
    /// relay's, or, without NATS, whatever a relay made with
    /// [`Relay::watched_by`] reports.
    pub fn relay_watch(&self) -> &RelayWatch {
        &self.relay_watch
    }

    /// Runs the HTTP server, the NATS command listener, the policies, the
    /// sequencer and the relay until `shutdown` completes (or one of them
    /// fails), then stops them in order (see the module documentation).
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> Result<(), RunError> {
        let App {
            listener,
            address,
            store,
            access,
            commands,
            nats,
            relay_watch,
            prefix,
            metrics,
            wake,
            sequenced,
            intake,
            park_for,
            wiring,
        } = self;
        let front_stop = Stop::new();
        let sequencer_stop = Stop::new();
        let relay_stop = Stop::new();
        let relay_wake = Arc::new(Notify::new());
        let mut failures = Vec::new();

        let mut front: JoinSet<Outcome> = JoinSet::new();
        let app = router(WebState {
            commands: commands.clone(),
            store: store.clone(),
            metrics: metrics.clone(),
            jetstream: nats.as_ref().map(|nats| nats.jetstream.clone()),
            dashboard: crate::web::dashboard::DashboardState::new(
                nats.as_ref().map(|nats| nats.verifier.clone()),
            ),
            read_models: ReadModels::new(store.pool().clone()),
            relay: relay_watch,
        });
        let stopped = front_stop.wait();
        let deadlines = wiring.deadlines;
        front.spawn(async move {
            crate::web::serve_with_deadlines(listener, app, deadlines, stopped).await;
            ("HTTP server", Ok(()))
        });
        // Without NATS these stay unset: nothing publishes, signs or listens.
        let mut publishing = None;
        if let Some(NatsSide {
            client,
            jetstream: _,
            relay,
            checkpointer,
            ingest,
            verifier: _,
        }) = nats
        {
            let stopped = front_stop.wait();
            let (ingest_client, ingest_prefix, ingest_intake) =
                (client.clone(), prefix.clone(), intake.clone());
            front.spawn(async move {
                crate::ingest::stream::serve(
                    ingest_client,
                    ingest,
                    ingest_prefix,
                    ingest_intake,
                    stopped,
                )
                .await;
                ("ingest consumer", Ok(()))
            });
            let stopped = front_stop.wait();
            let (parked_client, parked_prefix) = (client.clone(), prefix.clone());
            front.spawn(async move {
                crate::ingest::stream::tend_parked(
                    parked_client,
                    parked_prefix,
                    intake,
                    park_for,
                    stopped,
                )
                .await;
                ("parked facts", Ok(()))
            });
            let stopped = front_stop.wait();
            let nats_commands = commands.clone();
            front.spawn(async move {
                let served =
                    crate::nats_commands::serve(client, prefix, nats_commands, stopped).await;
                ("NATS command listener", served.map_err(|e| e.to_string()))
            });
            publishing = Some((relay, checkpointer));
        }
        if wiring.policies {
            let stopped = front_stop.wait();
            front.spawn(async move {
                commands.run_policies(READER_GAP, stopped).await;
                ("policies", Ok(()))
            });
        }

        // Subscribed before the sequencer starts, so no batch goes unseen.
        let mut announcements = sequenced.subscribe();
        let mut back: JoinSet<Outcome> = JoinSet::new();
        let stopped = sequencer_stop.wait();
        let announce = sequenced.clone();
        let sequencer_store = store.clone();
        let sequencer_wake = wake.clone();
        back.spawn(async move {
            Sequencer::new(sequencer_store)
                .run(sequencer_wake, announce, wiring.sequencer_idle, stopped)
                .await;
            ("sequencer", Ok(()))
        });

        let mut relays: JoinSet<Outcome> = JoinSet::new();
        // The projector keeps the read models up to the ledger; it stops
        // with the relay, after the sequencer drained.
        let projector_wake = Arc::new(Notify::new());
        let stopped = relay_stop.wait();
        let woken = projector_wake.clone();
        let projector = tledger_projections::projector::Projector::new(store.clone())
            .waking_after_commit(wake.clone());
        relays.spawn(async move {
            projector
                .run(woken, wiring.projector_idle, READER_GAP, stopped)
                .await;
            ("projector", Ok(()))
        });
        if let Some((relay, checkpointer)) = publishing {
            let stopped = relay_stop.wait();
            let woken = relay_wake.clone();
            relays.spawn(async move {
                relay.run(woken, stopped).await;
                ("relay", Ok(()))
            });
            let stopped = relay_stop.wait();
            let checkpoints_seen = sequenced.subscribe();
            relays.spawn(async move {
                checkpointer.run(checkpoints_seen, stopped).await;
                ("checkpointer", Ok(()))
            });
        }
        // The relay wakes when the sequencer announces a batch. A lagging
        // receiver still wakes it: the relay reads the ledger, not the
        // announcements.
        let mut helpers = JoinSet::new();
        let woken = relay_wake.clone();
        let projector_woken = projector_wake.clone();
        helpers.spawn(async move {
            while let Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) =
                announcements.recv().await
            {
                woken.notify_one();
                projector_woken.notify_one();
            }
        });
        // A token revoked by another process stops working here at once.
        helpers.spawn(async move {
            access
                .follow_token_changes(std::future::pending::<()>())
                .await;
        });
        helpers.spawn(async move {
            let mut every = tokio::time::interval(METRICS_UPKEEP);
            loop {
                every.tick().await;
                metrics.run_upkeep();
            }
        });
        tracing::info!(%address, "listening on http://{address}");

        // Run until asked to stop or until a component ends by itself,
        // which is a failure: the service must not go on half-working.
        tokio::pin!(shutdown);
        tokio::select! {
            () = &mut shutdown => tracing::info!("shutting down"),
            Some(ended) = front.join_next() => failures.push(ended_early(ended)),
            Some(ended) = back.join_next() => failures.push(ended_early(ended)),
            Some(ended) = relays.join_next() => failures.push(ended_early(ended)),
        }
        if !failures.is_empty() {
            tracing::error!(failure = %failures.join("; "), "stopping the service");
        }

        front_stop.trigger();
        finish(&mut front, FRONT_GRACE, &mut failures).await;
        sequencer_stop.trigger();
        finish(&mut back, SEQUENCER_GRACE, &mut failures).await;
        // One last look at the ledger for what the sequencer drained.
        relay_wake.notify_one();
        projector_wake.notify_one();
        relay_stop.trigger();
        finish(&mut relays, RELAY_GRACE, &mut failures).await;
        helpers.shutdown().await;
        tracing::info!("stopped");

        if failures.is_empty() {
            Ok(())
        } else {
            Err(RunError { failures })
        }
    }
}

/// A component that ended before the shutdown was asked for.
fn ended_early(ended: Result<Outcome, tokio::task::JoinError>) -> String {
    match ended {
        Ok((name, Ok(()))) => format!("the {name} stopped by itself"),
        Ok((name, Err(reason))) => format!("the {name} failed: {reason}"),
        Err(e) => format!("a component panicked: {e}"),
    }
}

/// Waits up to `grace` for the tasks of `set` to end, then aborts the rest.
async fn finish(set: &mut JoinSet<Outcome>, grace: Duration, failures: &mut Vec<String>) {
    let drained = tokio::time::timeout(grace, async {
        while let Some(ended) = set.join_next().await {
            match ended {
                Ok((_, Ok(()))) => {}
                Ok((name, Err(reason))) => failures.push(format!("the {name} failed: {reason}")),
                Err(e) if e.is_cancelled() => {}
                Err(e) => failures.push(format!("a component panicked: {e}")),
            }
        }
    })
    .await;
    if drained.is_err() {
        let left = set.len();
        tracing::warn!(
            left,
            "{left} component(s) did not stop within {} s; aborting them",
            grace.as_secs()
        );
        set.shutdown().await;
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM. A second signal ends the
/// process at once, for an operator who does not want to wait for the
/// graceful shutdown. The handlers are installed when this is called, not
/// when the future is first polled: a signal that comes as soon as the
/// service says it is listening must not find the default action (which
/// ends the process without the graceful shutdown).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    let mut signals = Signals::install();
    async move {
        signals.next().await;
        tracing::info!("signal received; finishing in-flight work (signal again to stop at once)");
        tokio::spawn(async move {
            signals.next().await;
            tracing::warn!("second signal: stopping at once");
            std::process::exit(130);
        });
    }
}

/// SIGTERM and SIGINT, listened for from installation on.
struct Signals {
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(stream) => Some(stream),
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for {name}");
                    None
                }
            };
            Self {
                terminate: listen(SignalKind::terminate(), "SIGTERM"),
                interrupt: listen(SignalKind::interrupt(), "SIGINT"),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// The next signal; never, when no handler could be installed
    /// (stopping the service at once because of that would be worse).
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            let terminate = async {
                match self.terminate.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let interrupt = async {
                match self.interrupt.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = terminate => {}
                () = interrupt => {}
            }
        }
        #[cfg(not(unix))]
        ctrl_c().await;
    }
}

#[cfg(not(unix))]
/// Ctrl-C; never, when its handler cannot be installed (stopping the
/// service at once because of that would be worse).
async fn ctrl_c() {
    if let Err(error) = tokio::signal::ctrl_c().await {
        tracing::warn!(%error, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await;
    }
}
