//! Free loopback ports.
//!
//! Private servers listen on a port the kernel picks (bind `127.0.0.1:0`),
//! never on a fixed one: tests run in parallel, and the machine's own
//! PostgreSQL and NATS hold the standard ports. The port is released before
//! the server binds it, so another process could take it in between; the
//! private servers retry startup on a fresh port when their bind fails.

use std::net::{Ipv4Addr, TcpListener};

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// # Panics
/// If the kernel refuses to bind a loopback socket (no loopback interface).
pub fn free_port() -> u16 {
    try_free_port().unwrap_or_else(|e| panic!("{e:#}"))
}

pub(crate) fn try_free_port() -> anyhow::Result<u16> {
    use anyhow::Context as _;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .context("binding 127.0.0.1:0 to find a free port (is the loopback interface up?)")?;
    let port = listener
        .local_addr()
        .context("reading the port of a socket bound to 127.0.0.1:0")?
        .port();
    Ok(port)
}
