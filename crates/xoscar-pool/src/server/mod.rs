//! The serving side: [`serve`] a [`Listener`] with a [`Handler`].

mod conn;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use xoscar_transport::{Address, Listener};

use crate::{ConfigError, Message, ServerConfig};

/// What a server does with requests. One handler serves every connection; each request runs
/// in its own task, so requests on one connection run concurrently and may finish in any
/// order, and a busy handler never delays pings.
pub trait Handler: Send + Sync + 'static {
    /// Answers a request. If the caller cancels, this future is dropped.
    fn call(&self, request: Message) -> impl Future<Output = Message> + Send;

    /// Receives a one-way message. Default: drops it.
    fn notify(&self, message: Message) -> impl Future<Output = ()> + Send {
        drop(message);
        async {}
    }
}

/// A handler that answers every request with itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

impl Handler for Echo {
    async fn call(&self, request: Message) -> Message {
        request
    }
}

/// A running server: its accept loop and every connection task.
#[derive(Debug)]
pub struct Server {
    local: Address,
    live: Arc<AtomicUsize>,
    accept_loop: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
}

impl Server {
    /// The address it listens on.
    pub fn local_addr(&self) -> &Address {
        &self.local
    }

    /// Connections open now (handshake done, not yet closed).
    pub fn connections(&self) -> usize {
        self.live.load(Relaxed)
    }

    /// Stops accepting and closes every connection gracefully: each gets a go-away naming the
    /// last request it accepted, its in-flight requests are answered, then it closes.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Stops accepting and drops every connection at once, as a crash would: in-flight calls
    /// see the connection lost.
    pub fn abort(&self) {
        self.accept_loop.abort();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Serves `listener` with `handler` until the returned [`Server`] is shut down or dropped.
/// Must be called within a tokio runtime; the accept loop and connections run on it.
pub fn serve<H: Handler>(
    listener: Listener,
    handler: H,
    config: ServerConfig,
) -> Result<Server, ConfigError> {
    let config = Arc::new(config.resolve()?);
    let local = listener.local_addr().clone();
    let live = Arc::new(AtomicUsize::new(0));
    let (shutdown, shutdown_rx) = watch::channel(false);
    let accept_loop =
        tokio::spawn(accept_loop(listener, Arc::new(handler), config, live.clone(), shutdown_rx));
    Ok(Server { local, live, accept_loop, shutdown })
}

async fn accept_loop<H: Handler>(
    mut listener: Listener,
    handler: Arc<H>,
    config: Arc<crate::config::ResolvedServerConfig>,
    live: Arc<AtomicUsize>,
    shutdown: watch::Receiver<bool>,
) {
    // Owned here, so aborting this task aborts every connection with it.
    let mut connections = JoinSet::new();
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(incoming) => {
                    connections.spawn(conn::serve_connection(
                        incoming,
                        handler.clone(),
                        config.clone(),
                        live.clone(),
                        shutdown.clone(),
                    ));
                }
                Err(error) => {
                    // Usually a passing condition (out of descriptors): back off briefly.
                    tracing::warn!(address = %listener.local_addr(), %error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = stopping(&mut stop) => break,
        }
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

/// Completes once shutdown is asked for (or the [`Server`] is gone).
pub(crate) async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    // An error means the sender is gone, which also means stop.
    let _ = shutdown.wait_for(|&stopping| stopping).await.map(drop);
}
