//! The serving side: [`serve`] a [`Listener`] with a [`Handler`].

mod conn;
mod dispatch;
mod responder;
mod state;
mod writer;

pub use responder::Responder;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use xoscar_transport::{Address, Listener};

use crate::{Message, PoolError, ServerConfig};

/// What a server does with requests and one-way messages. One handler serves every
/// connection.
///
/// - Requests on one connection run concurrently and may finish in any order; a handler that
///   waits never delays pings or other requests.
/// - One-way messages of one connection are handled one after another, in the order they
///   arrived: [`Handler::notify`] for the next one starts only when the previous one's future
///   completed. Keep it short (e.g. hand the message to a queue): while it waits, later
///   one-way messages on that connection wait too, and at the connection's limits the server
///   stops reading it.
/// - There is no ordering between requests and one-way messages.
/// - A handler that panics fails only its own request: the caller gets
///   [`PoolError::HandlerPanicked`] with the panic message; a panicking one-way handler is
///   logged and its message dropped. The connection and everything else on it go on.
pub trait Handler: Send + Sync + 'static {
    /// Whether requests go to [`Handler::respond`] instead of [`Handler::call`]. Default:
    /// `false`.
    const RESPONDS: bool = false;

    /// With [`Handler::RESPONDS`]: whether requests wait in a queue of the handler's before
    /// their work begins ([`Responder::begin`]). Until then, a cancel its caller still waits on
    /// ([`crate::Pool::call_cancellable`]) is answered `CANCELLED` by the server at once, and
    /// the responder, when its holder gets to it, reads as cancelled: so a caller never waits
    /// on work queued behind other work. Default: `false` (a cancel is the holder's to answer
    /// whenever it looks).
    const QUEUES: bool = false;

    /// Answers a request. If the caller cancels, or its connection is lost, this future is
    /// dropped. (A handler whose future has to wait costs the server a task per request; one
    /// that hands requests to another task anyway can take them with [`Handler::respond`].)
    fn call(&self, request: Message) -> impl Future<Output = Message> + Send;

    /// With [`Handler::RESPONDS`]: takes a request, to be answered through `responder` now or
    /// later from any task (e.g. after the request went through a queue to a worker), so the
    /// server spends no task and no future on it. It runs on the connection's task: hand the
    /// request off, never block. A panic here fails the request, as in `call`. A cancel by the
    /// caller discards a later answer; whoever holds the responder sees it through
    /// [`Responder::is_cancelled`] and [`Responder::cancelled`] to stop the work. Default:
    /// drops the request, which the responder answers as dropped.
    fn respond(&self, request: Message, responder: Responder) {
        drop((request, responder));
    }

    /// Receives a one-way message. Default: drops it.
    fn notify(&self, message: Message) -> impl Future<Output = ()> + Send {
        drop(message);
        async {}
    }
}

/// A handler that answers every request with the request itself: a ready-made endpoint for
/// health and connectivity checks, examples and benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

impl Handler for Echo {
    async fn call(&self, request: Message) -> Message {
        request
    }
}

/// A running server: its accept loop and every connection task. Dropping it starts a graceful
/// shutdown without waiting for it; [`Server::shutdown`] waits.
#[derive(Debug)]
#[must_use = "dropping a Server shuts it down"]
pub struct Server {
    local: Address,
    counters: Arc<ServerCounters>,
    accept_loop: JoinHandle<()>,
    shutdown: watch::Sender<bool>,
    /// Closed when the accept loop has ended (every connection closed, or aborted).
    finished: watch::Receiver<()>,
}

impl Server {
    /// The address it listens on.
    pub fn local_addr(&self) -> &Address {
        &self.local
    }

    /// Connections open now (handshake done, not yet closed).
    pub fn connections(&self) -> usize {
        self.counters.live.load(Relaxed)
    }

    /// Peers refused so far because they did not authenticate (logged as warnings with the
    /// peer's address; see `TransportConfig::auth_token`).
    pub fn refused(&self) -> u64 {
        self.counters.refused.load(Relaxed)
    }

    /// Dials closed at once so far because the server held
    /// [`ServerConfig::max_connections`] already (metric
    /// `xoscar_server_connections_turned_away_total`).
    pub fn turned_away(&self) -> u64 {
        self.counters.turned_away.load(Relaxed)
    }

    /// Stops accepting and closes every connection gracefully, and completes once all are
    /// closed. Each connection gets a go-away; requests and one-way messages that still arrive
    /// before the caller closes its sending side are served; every accepted request is
    /// answered; then the connection closes. A caller that stays silent is given up after
    /// `drain_timeout`. A handler that never finishes keeps this waiting: use
    /// [`Server::abort`] to stop at once.
    ///
    /// The shutdown starts when this is called (not when the future is first polled).
    pub fn shutdown(&self) -> impl Future<Output = ()> + Send + 'static {
        let _ = self.shutdown.send(true);
        let mut finished = self.finished.clone();
        async move {
            // Errs once the accept loop's sender is dropped: that is the signal.
            let _ = finished.changed().await;
        }
    }

    /// Stops accepting and drops every connection and handler at once, as a crash of this
    /// server would: callers see their connections lost (`ConnectionLost`), and every handler
    /// future is dropped.
    pub fn abort(&self) {
        self.accept_loop.abort();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

/// The gauge of server connections open in the process (every server).
pub(crate) const SERVER_CONNECTIONS: &str = "xoscar_server_connections";

/// What a server counts, shared by its connection tasks; also reported through the
/// `metrics` facade (`xoscar_server_connections` gauge, `xoscar_server_auth_refusals_total`
/// counter).
#[derive(Debug, Default)]
pub(crate) struct ServerCounters {
    /// Connections past their handshake and not yet closed.
    live: AtomicUsize,
    /// Peers refused for failing authentication.
    refused: std::sync::atomic::AtomicU64,
    /// Dials closed at once, over the connection limit.
    turned_away: std::sync::atomic::AtomicU64,
}

/// When a refusal or a turned-away dial was last logged as a warning (ms since the first), so
/// a flood of strangers cannot flood the log: at most one warning a second, the rest at debug
/// level.
static LAST_STRANGER_WARNING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl ServerCounters {
    pub(crate) fn opened(&self) {
        self.live.fetch_add(1, Relaxed);
        crate::stats::publish(SERVER_CONNECTIONS, true);
    }

    pub(crate) fn closed(&self) {
        self.live.fetch_sub(1, Relaxed);
        crate::stats::publish(SERVER_CONNECTIONS, false);
    }

    /// Counts a dial turned away at the connection limit; whether it may be logged as a
    /// warning (one a second at most, shared with refusals).
    pub(crate) fn turned_away(&self) -> bool {
        self.turned_away.fetch_add(1, Relaxed);
        metrics::counter!("xoscar_server_connections_turned_away_total").increment(1);
        may_warn()
    }

    /// Counts a refusal; whether it may be logged as a warning (one a second at most).
    pub(crate) fn refused(&self) -> bool {
        self.refused.fetch_add(1, Relaxed);
        metrics::counter!("xoscar_server_auth_refusals_total").increment(1);
        may_warn()
    }
}

/// Logs a dial turned away at the connection limit (a warning at most once a second).
fn turn_away(incoming: &xoscar_transport::Incoming, counters: &ServerCounters, limit: usize) {
    let peer = incoming.peer();
    if counters.turned_away() {
        tracing::warn!(%peer, limit, "turned a dial away: the server holds its maximum of connections");
    } else {
        tracing::debug!(%peer, limit, "turned a dial away: the server holds its maximum of connections");
    }
}

/// Whether a warning about strangers may be logged now: at most one a second.
fn may_warn() -> bool {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let now = START.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64 + 1000;
    let last = LAST_STRANGER_WARNING.load(Relaxed);
    now >= last + 1000
        && LAST_STRANGER_WARNING.compare_exchange(last, now, Relaxed, Relaxed).is_ok()
}

/// Serves `listener` with `handler` until the returned [`Server`] is shut down or dropped.
/// The accept loop and the connections run on the current tokio runtime; called outside one,
/// this is [`PoolError::NoRuntime`].
pub fn serve<H: Handler>(
    listener: Listener,
    handler: H,
    config: ServerConfig,
) -> Result<Server, PoolError> {
    let runtime = Handle::try_current().map_err(|_| PoolError::NoRuntime)?;
    let config = Arc::new(config.resolve()?);
    let local = listener.local_addr().clone();
    let counters = Arc::new(ServerCounters::default());
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (finished_tx, finished) = watch::channel(());
    let accept_loop = runtime.spawn(accept_loop(
        listener,
        Arc::new(handler),
        config,
        counters.clone(),
        shutdown_rx,
        finished_tx,
    ));
    Ok(Server { local, counters, accept_loop, shutdown, finished })
}

async fn accept_loop<H: Handler>(
    mut listener: Listener,
    handler: Arc<H>,
    config: Arc<crate::config::ResolvedServerConfig>,
    counters: Arc<ServerCounters>,
    shutdown: watch::Receiver<bool>,
    // Dropped when this task ends or is aborted: tells `Server::shutdown` it is over.
    _finished: watch::Sender<()>,
) {
    // Owned here, so aborting this task aborts every connection with it.
    let mut connections = JoinSet::new();
    let mut stop = shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(incoming) => {
                    // Connections that ended leave the set first, so they do not count.
                    while connections.try_join_next().is_some() {}
                    if connections.len() >= config.max_connections {
                        // At the limit (handshakes included): closed at once, before any task
                        // or buffer is spent on it.
                        turn_away(&incoming, &counters, config.max_connections);
                        continue;
                    }
                    connections.spawn(conn::serve_connection(
                        incoming,
                        handler.clone(),
                        config.clone(),
                        counters.clone(),
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

/// [`stopping`] owning its receiver, for a future kept across many polls.
pub(crate) async fn stopping_owned(mut shutdown: watch::Receiver<bool>) {
    stopping(&mut shutdown).await;
}

#[cfg(test)]
mod tests {
    use super::ServerCounters;

    #[test]
    fn refusals_are_all_counted_and_warned_of_at_most_once_a_second() {
        let counters = ServerCounters::default();
        assert!(counters.refused(), "the first refusal is a warning");
        assert!(!counters.refused(), "the next, within the second, is not");
        assert!(!counters.refused());
        assert_eq!(counters.refused.load(std::sync::atomic::Ordering::Relaxed), 3);
        std::thread::sleep(std::time::Duration::from_millis(1050));
        assert!(counters.refused(), "a second later, a warning again");
    }
}

#[cfg(test)]
mod gauge_tests {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

    use metrics::{Counter, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, SharedString, Unit};

    use super::{SERVER_CONNECTIONS, ServerCounters};
    use crate::stats::{Counters, names};

    /// A gauge that adds atomically, as real recorders do.
    #[derive(Default)]
    struct Value(AtomicU64);

    impl GaugeFn for Value {
        fn increment(&self, by: f64) {
            let _ =
                self.0.fetch_update(SeqCst, SeqCst, |v| Some((f64::from_bits(v) + by).to_bits()));
        }
        fn decrement(&self, by: f64) {
            self.increment(-by);
        }
        fn set(&self, value: f64) {
            self.0.store(value.to_bits(), SeqCst);
        }
    }

    #[derive(Default)]
    struct Gauges(parking_lot::Mutex<HashMap<String, Arc<Value>>>);

    impl Gauges {
        fn value(&self, name: &str) -> f64 {
            self.0.lock().get(name).map_or(0.0, |v| f64::from_bits(v.0.load(SeqCst)))
        }
    }

    impl metrics::Recorder for &'static Gauges {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
            Counter::noop()
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.0.lock().entry(key.name().to_owned()).or_default().clone())
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    /// Connections and leases opened and closed on four threads at once, round after round,
    /// the closes released together: after each round every gauge reads exactly zero.
    /// (Setting each gauge to a total read a moment before left it at whatever the last
    /// racing thread had read.)
    #[test]
    fn gauges_stay_exact_under_concurrent_changes() {
        let gauges: &'static Gauges = Box::leak(Box::default());
        metrics::set_global_recorder(gauges).unwrap();
        let (client, server) = (Arc::new(Counters::default()), Arc::new(ServerCounters::default()));
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let wrong = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let (client, server) = (client.clone(), server.clone());
                let (barrier, wrong) = (barrier.clone(), wrong.clone());
                std::thread::spawn(move || {
                    for round in 0..2_000 {
                        client.connected();
                        client.leased();
                        server.opened();
                        barrier.wait();
                        client.released();
                        server.closed();
                        client.closed(false);
                        barrier.wait();
                        if thread == 0 {
                            for name in [names::CONNECTIONS, names::LEASES, SERVER_CONNECTIONS] {
                                if gauges.value(name) != 0.0 {
                                    wrong.lock().push((round, name, gauges.value(name)));
                                }
                            }
                        }
                        barrier.wait();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(*wrong.lock(), Vec::new());
    }
}
