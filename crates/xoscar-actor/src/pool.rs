//! [`ActorPool`]: where actors live, served at an address, and its builder.
//!
//! The top of the crate: uses the serving side, the caller (for direct delivery) and the
//! actor core.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use foldhash::fast::RandomState;
use tokio::runtime::Handle;
use xoscar_pool::env_auth_token;
use xoscar_pool::{Server, ServerConfig};
use xoscar_transport::{Address, AuthToken, TransportConfig, listen};

use crate::actor::core::{Core, Factory, factory};
use crate::actor::handle::PoolHandle;
use crate::actor::runner::Mode;
use crate::call::client::client;
use crate::neighbours::{Ingress, Neighbours};
use crate::observe::debug::Thresholds;
use crate::service::Service;
use crate::{Actor, ActorError, Failure};

/// Default of [`ActorPoolBuilder::mailbox_capacity`].
pub const DEFAULT_MAILBOX_CAPACITY: usize = 1024;

/// Default of [`ActorPoolBuilder::shutdown_grace`]: 10 seconds.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// An actor pool: actors by uid, served at an address to callers in other processes, and
/// reached directly (no encoding, no socket) by callers in this one.
///
/// Dropping it stops serving and drops every actor at once (no stop hooks; pending calls get
/// [`ActorError::Stopped`]); [`ActorPool::shutdown`] stops gracefully. It dereferences to
/// its [`PoolHandle`] (create actors, address).
#[must_use = "dropping an ActorPool stops it"]
pub struct ActorPool {
    handle: PoolHandle,
    servers: Vec<Server>,
    addresses: Vec<Address>,
    /// The listeners' settings (with the shared secret they ask for), for listeners added
    /// later ([`PoolHandle::serve`]).
    listening: (TransportConfig, ServerConfig),
    /// How long [`ActorPool::shutdown`] waits before it aborts what is left.
    shutdown_grace: Duration,
    /// Its Prometheus endpoint, stopped when the pool goes.
    #[cfg(feature = "prometheus")]
    prometheus: Option<crate::observe::prometheus::Endpoint>,
}

impl std::fmt::Debug for ActorPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorPool").field("handle", &self.handle).finish_non_exhaustive()
    }
}

impl Deref for ActorPool {
    type Target = PoolHandle;

    fn deref(&self) -> &PoolHandle {
        &self.handle
    }
}

impl ActorPool {
    /// A builder for a pool at `address` (`host:port`, port 0 for any; `unix:///path`;
    /// `inproc://name`).
    pub fn builder(address: Address) -> ActorPoolBuilder {
        ActorPoolBuilder {
            address,
            internal: Vec::new(),
            factories: HashMap::default(),
            mailbox_capacity: DEFAULT_MAILBOX_CAPACITY,
            server: ServerConfig::default(),
            transport: TransportConfig::default(),
            direct: true,
            slow_call: None,
            hold: None,
            auth_token: None,
            metrics: false,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            neighbours: None,
            #[cfg(feature = "prometheus")]
            prometheus: None,
        }
    }

    /// Starts a pool at `address` with every default and no registered types.
    pub async fn start(address: Address) -> Result<ActorPool, ActorError> {
        Self::builder(address).start().await
    }

    /// A handle to this pool for code that must not own it.
    pub fn handle(&self) -> &PoolHandle {
        &self.handle
    }

    /// Where its Prometheus endpoint listens ([`ActorPoolBuilder::prometheus`]), with the
    /// real port when port 0 was asked.
    #[cfg(feature = "prometheus")]
    pub fn prometheus_address(&self) -> Option<std::net::SocketAddr> {
        self.prometheus.as_ref().map(|endpoint| endpoint.address)
    }

    /// Every address the pool's own listeners listen on: its address first, then its internal
    /// ones.
    pub fn addresses(&self) -> Vec<Address> {
        self.addresses.clone()
    }

    /// Its listeners' transport settings, with the shared secret they ask for
    /// ([`ActorPoolBuilder::auth_token`]) resolved.
    pub fn transport_config(&self) -> &TransportConfig {
        &self.listening.0
    }

    /// Its listeners' serving settings.
    pub fn server_config(&self) -> &ServerConfig {
        &self.listening.1
    }

    /// How long [`ActorPool::shutdown`] waits before it aborts what is left.
    pub fn shutdown_grace(&self) -> Duration {
        self.shutdown_grace
    }

    /// Stops gracefully: callers of this process no longer reach it, its servers drain (every
    /// accepted request is answered), then every actor stops after the messages it accepted,
    /// running its stop hook; all actors at once. Bounded by [`ActorPoolBuilder::shutdown_grace`]:
    /// whatever has not stopped by then (a stop hook or handler that never ends) is aborted,
    /// as on drop. Dropping this future half-way drops the pool, which aborts every actor it
    /// still owns.
    pub async fn shutdown(self) {
        self.unroute();
        let graceful = async {
            futures_util::future::join_all(self.servers.iter().map(Server::shutdown)).await;
            self.handle.core.stop_all().await;
        };
        if tokio::time::timeout(self.shutdown_grace, graceful).await.is_err() {
            tracing::warn!(
                address = %self.address(),
                grace = ?self.shutdown_grace,
                "the pool did not stop within its grace period; aborting what is left"
            );
        }
        // Dropping it now aborts whatever is left.
    }

    fn unroute(&self) {
        if let Ok(client) = client() {
            let core = Arc::downgrade(&self.handle.core);
            client.router.remove_local_where(|local| local.ptr_eq(&core));
        }
    }
}

impl Drop for ActorPool {
    fn drop(&mut self) {
        self.unroute();
        self.handle.core.abort_all();
        for server in &self.servers {
            server.abort();
        }
    }
}

/// Settings of an [`ActorPool`] before it starts, tonic-`Endpoint` style: every method states
/// its default.
pub struct ActorPoolBuilder {
    address: Address,
    internal: Vec<(Address, Ingress)>,
    factories: HashMap<String, Factory, RandomState>,
    mailbox_capacity: usize,
    server: ServerConfig,
    transport: TransportConfig,
    direct: bool,
    slow_call: Option<Duration>,
    hold: Option<Duration>,
    auth_token: Option<AuthToken>,
    metrics: bool,
    shutdown_grace: Duration,
    neighbours: Option<MakeNeighbours>,
    #[cfg(feature = "prometheus")]
    prometheus: Option<std::net::SocketAddr>,
}

impl std::fmt::Debug for ActorPoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorPoolBuilder")
            .field("address", &self.address.to_string())
            .field("types", &self.factories.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ActorPoolBuilder {
    /// Also listens at `address` (typically `unix:///...` for callers on this host, who map
    /// the pool's address to it with [`crate::map_address`]). Default: none.
    pub fn internal_address(mut self, address: Address) -> Self {
        self.internal.push((address, Ingress::Public));
        self
    }

    /// Also listens at `address`, taking beyond calls, creates and destroys what `ingress`
    /// allows (the sub pool layer's internal sockets; docs/security.md). Default: none.
    pub fn internal_address_for(mut self, address: Address, ingress: Ingress) -> Self {
        self.internal.push((address, ingress));
        self
    }

    /// Gives the pool the other pools of its host, made by `make` from the pool's handle once
    /// its state exists and before it serves (the sub pool layer's extension point). Default:
    /// none: the pool holds exactly its own actors and places them only in itself.
    pub fn neighbours(
        mut self,
        make: impl FnOnce(&PoolHandle) -> Arc<dyn Neighbours> + Send + 'static,
    ) -> Self {
        self.neighbours = Some(Box::new(make));
        self
    }

    /// Lets any caller create actors of type `A` here by `type_name` ([`crate::create_actor`]),
    /// made by `make` from the init message `I`. An error or panic in `make` fails that
    /// create. Registering a name twice keeps the last. Default: no types.
    pub fn register<A, I, F>(self, type_name: &str, make: F) -> Self
    where
        A: Actor,
        I: prost::Message + Default + 'static,
        F: Fn(I) -> Result<A, Failure> + Send + Sync + 'static,
    {
        self.register_mode(type_name, make, Mode::Serial)
    }

    /// [`ActorPoolBuilder::register`] for a concurrent actor type, created as with
    /// [`crate::CreateActor::concurrent`]`(limit)`.
    pub fn register_concurrent<A, I, F>(self, type_name: &str, limit: usize, make: F) -> Self
    where
        A: Actor + Clone,
        I: prost::Message + Default + 'static,
        F: Fn(I) -> Result<A, Failure> + Send + Sync + 'static,
    {
        self.register_mode(
            type_name,
            make,
            Mode::Concurrent { clone: A::clone, limit: limit.max(1) },
        )
    }

    fn register_mode<A, I, F>(mut self, type_name: &str, make: F, mode: Mode<A>) -> Self
    where
        A: Actor,
        I: prost::Message + Default + 'static,
        F: Fn(I) -> Result<A, Failure> + Send + Sync + 'static,
    {
        self.factories.insert(type_name.to_owned(), factory(make, mode));
        self
    }

    /// How many messages an actor's mailbox holds before senders wait. Default:
    /// [`DEFAULT_MAILBOX_CAPACITY`] (1024); at least 1. A serial actor takes up to 32 messages
    /// out of its mailbox at a time (one release of their room for the run), so up to 32 more
    /// than this may be waiting for it.
    pub fn mailbox_capacity(mut self, capacity: usize) -> Self {
        self.mailbox_capacity = capacity.max(1);
        self
    }

    /// The serving side's settings (idle timeout, drain, flow control). Default:
    /// [`ServerConfig::default`].
    pub fn server_config(mut self, config: ServerConfig) -> Self {
        self.server = config;
        self
    }

    /// Whether callers in this process reach the pool directly (the value handed over, no
    /// encoding, no socket). `false`: they go through its listener like any other process,
    /// which is what tests and benchmarks of the remote path want. Default: `true`.
    pub fn direct_delivery(mut self, direct: bool) -> Self {
        self.direct = direct;
        self
    }

    /// Logs (a `tracing` warning naming the actor, its uid, the message type and the time) every
    /// message that took at least `threshold` from entering an actor's mailbox to its handler's
    /// end. Default: off, unless the environment variable [`crate::ENV_SLOW_CALL`] gives one in
    /// seconds.
    pub fn slow_call_threshold(mut self, threshold: Duration) -> Self {
        self.slow_call = Some(threshold);
        self
    }

    /// Logs every handler that held its serial actor (kept every other message of that actor
    /// waiting) for at least `threshold`. Default: off, unless the environment variable
    /// [`crate::ENV_HOLD`] gives one in seconds.
    pub fn hold_threshold(mut self, threshold: Duration) -> Self {
        self.hold = Some(threshold);
        self
    }

    /// A shared secret every peer of this pool's TCP and Unix-socket listeners must prove it
    /// knows (HMAC challenge–response in the handshake; the secret never crosses the wire).
    /// A peer that cannot is refused before any request is read, and the refusal is logged
    /// with its address. Sub pools get the same secret (as `XOSCAR_AUTH_TOKEN`). This
    /// process's own calls use the caller's secret ([`crate::configure`], or
    /// `XOSCAR_AUTH_TOKEN`); with sub pools the two must be equal, or their start fails.
    /// Default: the transport config's token, else `XOSCAR_AUTH_TOKEN`, else none.
    pub fn auth_token(mut self, token: AuthToken) -> Self {
        self.auth_token = Some(token);
        self
    }

    /// Reports every message an actor of this pool handles through the `metrics` facade: a
    /// counter by actor type, message type and outcome, and a histogram of handler time
    /// ([`crate::observe::metrics`]). Connections, leases, reaps, dead peers, refusals and sub pool
    /// restarts are reported whatever this says. Default: off, since per message it reads the
    /// clock twice, allocates two label sets and looks up two metrics.
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Serves this process's metrics in the Prometheus text format at `address` (exactly that
    /// address; port 0 for any, see [`ActorPool::prometheus_address`]), answering any `GET`.
    /// Installs metrics-exporter-prometheus as the process's `metrics` recorder on first use
    /// (start fails if another recorder is installed) and turns [`Self::metrics`] on.
    /// Default: none.
    #[cfg(feature = "prometheus")]
    pub fn prometheus(mut self, address: std::net::SocketAddr) -> Self {
        self.prometheus = Some(address);
        self.metrics = true;
        self
    }

    /// How long [`ActorPool::shutdown`] lets its servers drain and its actors run their stop
    /// hooks before it aborts whatever is left (as dropping the pool does). Default:
    /// [`DEFAULT_SHUTDOWN_GRACE`] (10 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// The listeners' transport settings. Default: [`TransportConfig::default`].
    pub fn transport_config(mut self, config: TransportConfig) -> Self {
        self.transport = config;
        self
    }

    /// Binds every address, starts serving on the current tokio runtime (actors run there
    /// too) and makes the pool reachable directly from this process.
    pub async fn start(mut self) -> Result<ActorPool, ActorError> {
        let start_error = |address: &Address, reason: String| ActorError::Setup {
            address: address.to_string(),
            reason,
        };
        let runtime = Handle::try_current()
            .map_err(|_| start_error(&self.address, "needs a tokio runtime".to_owned()))?;
        let client = client()?;
        let debug = Thresholds::resolve(self.slow_call, self.hold)
            .map_err(|error| start_error(&self.address, error.to_string()))?;
        let auth = match self.auth_token.take().or_else(|| self.transport.get_auth_token().cloned())
        {
            Some(token) => Some(token),
            None => env_auth_token().map_err(|e| start_error(&self.address, e.to_string()))?,
        };
        self.transport = self.transport.auth_token(auth);
        #[cfg(feature = "prometheus")]
        let prometheus = match self.prometheus {
            Some(address) => Some(
                crate::observe::prometheus::serve(address)
                    .await
                    .map_err(|reason| start_error(&self.address, reason))?,
            ),
            None => None,
        };
        let mut listeners = Vec::with_capacity(1 + self.internal.len());
        let public = std::iter::once((&self.address, Ingress::Public));
        for (address, ingress) in public.chain(self.internal.iter().map(|(a, i)| (a, *i))) {
            let listener = listen(address, &self.transport)
                .await
                .map_err(|error| start_error(address, error.to_string()))?;
            listeners.push((listener, ingress));
        }
        let addresses: Vec<Address> =
            listeners.iter().map(|(l, _)| l.local_addr().clone()).collect();
        let core = Arc::new(Core::new(
            addresses[0].clone(),
            self.factories,
            self.mailbox_capacity,
            debug,
            self.metrics,
            runtime,
        ));
        let handle = PoolHandle { core: core.clone() };
        if let Some(make) = self.neighbours.take() {
            core.set_neighbours(make(&handle));
        }
        let mut servers = Vec::with_capacity(listeners.len());
        for (listener, ingress) in listeners {
            servers.push(handle.serve(listener, ingress, self.server.clone())?);
        }
        if self.direct {
            for address in &addresses {
                client.router.add_local(address.clone(), Arc::downgrade(&core));
            }
        }
        Ok(ActorPool {
            handle,
            servers,
            addresses,
            listening: (self.transport, self.server),
            shutdown_grace: self.shutdown_grace,
            #[cfg(feature = "prometheus")]
            prometheus,
        })
    }
}

/// Makes a pool's neighbours from its handle ([`ActorPoolBuilder::neighbours`]).
type MakeNeighbours = Box<dyn FnOnce(&PoolHandle) -> Arc<dyn Neighbours> + Send>;

impl PoolHandle {
    /// Serves this pool's actors on `listener` as the listener `ingress` says, until the
    /// returned server is shut down, aborted or dropped. The sub pool layer serves its main
    /// pool's internal socket this way.
    pub fn serve(
        &self,
        listener: xoscar_transport::Listener,
        ingress: Ingress,
        config: ServerConfig,
    ) -> Result<Server, ActorError> {
        let address = listener.local_addr().clone();
        let service = Service { core: self.core.clone(), ingress };
        xoscar_pool::serve(listener, service, config).map_err(|error| ActorError::Setup {
            address: address.to_string(),
            reason: error.to_string(),
        })
    }
}
