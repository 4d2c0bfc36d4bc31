//! [`ActorPool`]: where actors live, served at an address.

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
use crate::observe::debug::Thresholds;
use crate::service::{Ingress, Service};
use crate::sub_pool::{
    ExitHook, Host, Neighbourhood, Recovery, SubPool, SubPoolInfo, SubPoolOf, SubPools, start_all,
};
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
    /// Its sub pools' processes, killed when the pool goes.
    subs: Arc<SubPools>,
    /// What it knows of the other pools of its host (its core holds it as its neighbours).
    neighbourhood: Arc<Neighbourhood>,
    /// Made with its first sub pool: its private directory, its internal socket, the monitor.
    host: tokio::sync::OnceCell<Host>,
    /// The listeners' settings, for the internal socket made with the first sub pool.
    listening: (TransportConfig, ServerConfig),
    /// The shared secret its listeners ask for, handed to sub pools added later.
    auth: Option<AuthToken>,
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
            sub_pools: Vec::new(),
            label: String::new(),
            recovery: Recovery::default(),
            exit_hook: None,
            auth_token: None,
            metrics: false,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            sub_pool_of: None,
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

    /// Every address the pool listens on: its address first, then its internal ones (with sub
    /// pools, last, the Unix socket they reach it on, in a directory only this user may enter).
    pub fn addresses(&self) -> Vec<Address> {
        let host = self.host.get().map(|host| host.internal().clone());
        self.addresses.iter().cloned().chain(host).collect()
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
            let host = self.host.get().map(Host::server);
            futures_util::future::join_all(self.servers.iter().chain(host).map(Server::shutdown))
                .await;
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

    /// Its sub pools that serve or are being restarted, by index (the order they were given
    /// to [`ActorPoolBuilder::sub_pool`], then added).
    pub fn sub_pools(&self) -> Vec<SubPoolInfo> {
        self.subs.infos()
    }

    /// Kills sub pool `index`'s process with SIGKILL (xoscar's `kill_actor` on a pool); the
    /// monitor then notices and recovers it as [`ActorPoolBuilder::recovery`] says. Calls
    /// waiting on it fail at once with a connection error.
    pub fn kill_sub_pool(&self, index: usize) -> Result<(), ActorError> {
        self.subs.kill(index)
    }

    /// Completes once every sub pool serves again (none dead or being restarted; removed ones
    /// and, with [`Recovery::Off`], dead ones aside).
    pub async fn wait_recovered(&self) {
        self.subs.recovered().await
    }

    /// Starts one more sub pool at run time, at the next index.
    pub async fn add_sub_pool(&self, mut sub_pool: SubPool) -> Result<SubPoolInfo, ActorError> {
        same_secret_as_caller(&client()?.pool, self.auth.as_ref(), self.address())?;
        sub_pool.auth = self.auth.clone();
        let host = self.host().await?;
        let info = self.subs.add(sub_pool, host.dir()).await?;
        client()?.router.map(info.address.clone(), info.internal.clone());
        self.neighbourhood.sub_pool_serves(&info);
        self.subs.announce().await;
        Ok(info)
    }

    /// Stops sub pool `index` for good (its process is killed; its index stays taken, and
    /// placing on it fails).
    pub fn remove_sub_pool(&self, index: usize) -> Result<(), ActorError> {
        let info = self.subs.remove(index)?;
        if let Ok(client) = client() {
            client.router.unmap(&info.address);
        }
        self.neighbourhood.sub_pool_gone(index);
        Ok(())
    }

    /// Its host side, made (and the monitor started) with the first sub pool.
    async fn host(&self) -> Result<&Host, ActorError> {
        let (transport, server) = &self.listening;
        let start = Host::start(
            &self.handle.core,
            &self.neighbourhood,
            &self.subs,
            transport,
            server.clone(),
        );
        self.host.get_or_try_init(|| start).await
    }

    fn unroute(&self) {
        if let Ok(client) = client() {
            let core = Arc::downgrade(&self.handle.core);
            client.router.remove_local_where(|local| local.ptr_eq(&core));
            for sub in self.subs.infos() {
                client.router.unmap(&sub.address);
            }
        }
    }
}

impl Drop for ActorPool {
    fn drop(&mut self) {
        if let Some(host) = self.host.get() {
            host.abort();
        }
        self.unroute();
        self.subs.kill_all();
        self.handle.core.abort_all();
        for server in &self.servers {
            server.abort();
        }
    }
}

/// Sub pools get `ours` and this process calls them with its caller's secret: the two must
/// be equal, or the sub pools would refuse every call of their main pool.
fn same_secret_as_caller(
    caller: &xoscar_pool::Pool,
    ours: Option<&AuthToken>,
    address: &Address,
) -> Result<(), ActorError> {
    if caller.config().transport().get_auth_token() == ours {
        return Ok(());
    }
    Err(ActorError::Setup {
        address: address.to_string(),
        reason: "this pool's auth token differs from this process's caller's \
                 (xoscar::configure or XOSCAR_AUTH_TOKEN): its sub pools would refuse its calls"
            .to_owned(),
    })
}

/// Settings of an [`ActorPool`] before it starts, tonic-`Endpoint` style: every method states
/// its default.
pub struct ActorPoolBuilder {
    address: Address,
    internal: Vec<Address>,
    factories: HashMap<String, Factory, RandomState>,
    mailbox_capacity: usize,
    server: ServerConfig,
    transport: TransportConfig,
    direct: bool,
    slow_call: Option<Duration>,
    hold: Option<Duration>,
    sub_pools: Vec<SubPool>,
    label: String,
    recovery: Recovery,
    exit_hook: Option<ExitHook>,
    auth_token: Option<AuthToken>,
    metrics: bool,
    shutdown_grace: Duration,
    /// Set in a sub pool: its main pool and its internal socket.
    sub_pool_of: Option<SubPoolOf>,
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
        self.internal.push(address);
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
    /// [`DEFAULT_MAILBOX_CAPACITY`] (1024); at least 1.
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

    /// Starts `sub_pool` with this pool: a child process of this executable (whose `main`
    /// begins with [`crate::run_if_sub_pool`]) serving an actor pool with its own environment,
    /// label and addresses. [`ActorPoolBuilder::start`] returns once every sub pool serves,
    /// or fails naming the sub pool that did not (and leaves no process behind). Sub pools
    /// die with this pool: when it is dropped or shut down, and when this process ends, even
    /// by SIGKILL. This process reaches each through its internal Unix socket. Default: none.
    pub fn sub_pool(mut self, sub_pool: SubPool) -> Self {
        self.sub_pools.push(sub_pool);
        self
    }

    /// What happens when a sub pool's process dies (its monitor looks every 100 ms):
    /// nothing, a restart at the same index and addresses, or a restart that also creates
    /// again the actors this pool placed there. Default: [`Recovery::Process`].
    pub fn recovery(mut self, recovery: Recovery) -> Self {
        self.recovery = recovery;
        self
    }

    /// Calls `hook` with the sub pool and its exit status when a sub pool's process dies,
    /// before it is recovered (a panic in it is caught and logged). Default: none (the death
    /// is logged).
    pub fn on_sub_pool_exit(
        mut self,
        hook: impl Fn(&SubPoolInfo, std::process::ExitStatus) + Send + Sync + 'static,
    ) -> Self {
        self.exit_hook = Some(Arc::new(hook));
        self
    }

    /// This pool's label, for placing actors by label among a main pool and its sub pools
    /// ([`crate::Placement::Label`]). Default: none (empty).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// A shared secret every peer of this pool's TCP and Unix-socket listeners must prove it
    /// knows (HMAC challenge–response in the handshake; the secret never crosses the wire).
    /// A peer that cannot is refused before any request is read, and the refusal is logged
    /// with its address. Sub pools get the same secret (as `XOSCAR_AUTH_TOKEN`). This
    /// process's own calls use the caller's secret ([`crate::configure`], or
    /// `XOSCAR_AUTH_TOKEN`); with sub pools the two must be equal, or [`Self::start`] fails.
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

    /// Serves as sub pool of the main pool described by `of` (set by [`crate::run_if_sub_pool`]).
    pub(crate) fn sub_pool_of(mut self, of: SubPoolOf) -> Self {
        self.internal.push(of.internal.clone());
        self.sub_pool_of = Some(of);
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
        self.transport = self.transport.auth_token(auth.clone());
        if !self.sub_pools.is_empty() {
            same_secret_as_caller(&client.pool, auth.as_ref(), &self.address)?;
        }
        for spec in &mut self.sub_pools {
            spec.auth = auth.clone();
        }
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
        for address in std::iter::once(&self.address).chain(&self.internal) {
            let listener = listen(address, &self.transport)
                .await
                .map_err(|error| start_error(address, error.to_string()))?;
            listeners.push(listener);
        }
        let addresses: Vec<Address> = listeners.iter().map(|l| l.local_addr().clone()).collect();
        let core = Arc::new(Core::new(
            addresses[0].clone(),
            self.factories,
            self.mailbox_capacity,
            debug,
            self.metrics,
            runtime,
        ));
        let mut servers = Vec::with_capacity(listeners.len());
        for listener in listeners {
            let address = listener.local_addr().clone();
            let ingress = match &self.sub_pool_of {
                Some(of) if of.internal == address => {
                    Ingress::SubPoolInternal { main_pid: of.main_pid }
                }
                _ => Ingress::Public,
            };
            let service = Service { core: core.clone(), ingress };
            let server = xoscar_pool::serve(listener, service, self.server.clone())
                .map_err(|error| start_error(&address, error.to_string()))?;
            servers.push(server);
        }
        let main_internal = self.sub_pool_of.and_then(|of| of.main_internal);
        let recipes = self.recovery == Recovery::Actors;
        let neighbourhood = Arc::new(Neighbourhood::new(&core, self.label, recipes, main_internal));
        core.set_neighbours(neighbourhood.clone());
        if self.direct {
            for address in &addresses {
                client.router.add_local(address.clone(), Arc::downgrade(&core));
            }
        }
        let pool = ActorPool {
            handle: PoolHandle { core },
            servers,
            addresses,
            subs: Arc::new(SubPools::new(self.recovery, self.exit_hook)),
            neighbourhood,
            host: tokio::sync::OnceCell::new(),
            listening: (self.transport, self.server),
            auth,
            shutdown_grace: self.shutdown_grace,
            #[cfg(feature = "prometheus")]
            prometheus,
        };
        if self.sub_pools.is_empty() {
            return Ok(pool);
        }
        // On failure the pool, and the sub pools started, are dropped: nothing is left behind.
        let host = pool.host().await?;
        let running = start_all(self.sub_pools, host.dir(), host.internal()).await?;
        for sub in &running {
            client.router.map(sub.info.address.clone(), sub.info.internal.clone());
            pool.neighbourhood.sub_pool_serves(&sub.info);
        }
        pool.subs.extend(running);
        pool.subs.announce().await;
        Ok(pool)
    }
}
