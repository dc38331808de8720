//! The HTTP server: the accept loop, and the deadlines every connection
//! has for its request head and body (docs/access-and-sessions.md, Time
//! limits of an HTTP request).

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use tledger_domain::ErrorCode;

use crate::commands::Refusal;

/// How long a client has to send its request head: a client trickling it
/// (or sending nothing) would otherwise hold a connection for ever.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client has, once its request head is in, to send the whole
/// body: a client trickling it (a byte every few seconds) would otherwise
/// hold its connection and a handler for as long as it likes. 30 s is over
/// three times what the largest body (1 MiB) needs at 1 Mbit/s. A late body
/// is answered `408` with the contract's `malformed` error and the
/// connection is closed.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The time limits of every request on a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadlines {
    /// For the request head, from the connection's start or the previous
    /// answer.
    pub head: Duration,
    /// For the whole body, from the end of the head.
    pub body: Duration,
}

/// Serves `app` on `listener` until `shutdown`, then lets the connections
/// in flight finish. Unlike `axum::serve`, every connection has a deadline
/// for its request head ([`HEADER_READ_TIMEOUT`] in the service) and for
/// its body ([`BODY_READ_TIMEOUT`]).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    header_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let deadlines = Deadlines {
        head: header_timeout,
        body: BODY_READ_TIMEOUT,
    };
    serve_with_deadlines(listener, app, deadlines, shutdown).await;
}

/// [`serve`] with both deadlines chosen (tests play slow clients).
pub async fn serve_with_deadlines(
    listener: tokio::net::TcpListener,
    app: Router,
    deadlines: Deadlines,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(%error, "accepting an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(deadlines.head);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request| {
            within_body_deadline(app.clone(), request, deadlines.body)
        });
        let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = watched.await {
                tracing::debug!(%error, "HTTP connection ended");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Answers `request` with `app`, its body cut off `limit` after the head
/// came in. A handler sees a late body as a failed read; its answer is then
/// replaced by a `408` (it could not know why the read failed) and the
/// connection is closed, since the rest of the body would still come.
async fn within_body_deadline(
    app: Router,
    request: axum::http::Request<hyper::body::Incoming>,
    limit: Duration,
) -> Result<Response, std::convert::Infallible> {
    use hyper::service::Service as _;
    let late = Arc::new(AtomicBool::new(false));
    let request = request.map(|body| {
        axum::body::Body::new(TimedBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
            late: late.clone(),
        })
    });
    let response = hyper_util::service::TowerToHyperService::new(app)
        .call(request)
        .await?;
    if !late.load(Ordering::Relaxed) {
        return Ok(response);
    }
    let refusal = Refusal::new(
        ErrorCode::Malformed,
        format!(
            "the request body did not arrive within {} s of its head",
            limit.as_secs_f64()
        ),
    );
    Ok((
        StatusCode::REQUEST_TIMEOUT,
        [(axum::http::header::CONNECTION, "close")],
        Json(refusal.reply().body),
    )
        .into_response())
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyReadError {
    #[error("the request body did not arrive within {} s", .0.as_secs_f64())]
    TooSlow(Duration),
    #[error("reading the request body: {0}")]
    Read(#[from] hyper::Error),
}

/// A request body that fails once its deadline has passed.
struct TimedBody {
    inner: hyper::body::Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    /// Set when the deadline cut the body off.
    late: Arc<AtomicBool>,
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = BodyReadError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        // The deadline first: data that keeps trickling in must not keep
        // the body alive past it.
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.late.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyReadError::TooSlow(this.limit))));
        }
        Pin::new(&mut this.inner)
            .poll_frame(cx)
            .map_err(BodyReadError::Read)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
