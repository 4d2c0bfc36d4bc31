//! [`MainPool`]: an actor pool with sub pools, built from an [`ActorPoolBuilder`] by
//! [`MainPoolBuilder`] (or by the [`WithSubPools`] methods on the builder itself).

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use xoscar_actor::{ActorError, ActorPool, ActorPoolBuilder, caller, map_address, unmap_address};
use xoscar_transport::{Address, AuthToken};

use crate::host::Host;
use crate::monitor::{ExitHook, Recovery, SubPools};
use crate::neighbourhood::Neighbourhood;
use crate::spawn::start_all;
use crate::spec::{SubPool, SubPoolInfo};

/// An actor pool with sub pools: actor pools in child processes of this executable, started
/// with it, watched, recovered as [`MainPoolBuilder::recovery`] says, and dying with it (when
/// it is dropped or shut down, and when this process ends, even by SIGKILL). It dereferences
/// to its [`ActorPool`]; creates sent to it are placed among itself and its sub pools
/// ([`xoscar_actor::Placement`]), and requests for actors of its sub pools are forwarded.
#[must_use = "dropping a MainPool stops it and its sub pools"]
pub struct MainPool {
    /// First: dropped (sub pools killed) before the pool.
    owned: Owned,
    pool: ActorPool,
}

/// What a main pool owns beyond its actor pool, ended when it goes.
struct Owned {
    /// Its sub pools' processes, killed when the pool goes.
    subs: Arc<SubPools>,
    /// What it knows of its host's pools (the pool holds it as its neighbours).
    neighbourhood: Arc<Neighbourhood>,
    /// Made with its first sub pool: its private directory, its internal socket, the monitor.
    host: tokio::sync::OnceCell<Host>,
    /// The shared secret its listeners ask for, handed to its sub pools.
    auth: Option<AuthToken>,
}

impl Owned {
    /// This process no longer maps its sub pools' addresses to their sockets.
    fn unroute(&self) {
        for sub in self.subs.infos() {
            let _ = unmap_address(&sub.address);
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        if let Some(host) = self.host.get() {
            host.abort();
        }
        self.unroute();
        self.subs.kill_all();
    }
}

impl std::fmt::Debug for MainPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MainPool")
            .field("pool", &self.pool)
            .field("sub_pools", &self.owned.subs.infos().len())
            .finish()
    }
}

impl Deref for MainPool {
    type Target = ActorPool;

    fn deref(&self) -> &ActorPool {
        &self.pool
    }
}

impl MainPool {
    /// A builder for a main pool serving the actor pool `pool` describes.
    pub fn builder(pool: ActorPoolBuilder) -> MainPoolBuilder {
        MainPoolBuilder {
            pool,
            sub_pools: Vec::new(),
            label: String::new(),
            recovery: Recovery::default(),
            exit_hook: None,
        }
    }

    /// Every address the pool listens on: its address first, then its internal ones, and
    /// last, once it has sub pools, the Unix socket they reach it on (in a directory only this
    /// user may enter).
    pub fn addresses(&self) -> Vec<Address> {
        let host = self.owned.host.get().map(|host| host.internal().clone());
        self.pool.addresses().into_iter().chain(host).collect()
    }

    /// Its sub pools that serve or are being restarted, by index (the order they were given
    /// to [`MainPoolBuilder::sub_pool`], then added).
    pub fn sub_pools(&self) -> Vec<SubPoolInfo> {
        self.owned.subs.infos()
    }

    /// Kills sub pool `index`'s process with SIGKILL (xoscar's `kill_actor` on a pool); the
    /// monitor then notices and recovers it as [`MainPoolBuilder::recovery`] says. Calls
    /// waiting on it fail at once with a connection error.
    pub fn kill_sub_pool(&self, index: usize) -> Result<(), ActorError> {
        self.owned.subs.kill(index)
    }

    /// Completes once every sub pool serves again (none dead or being restarted; removed ones
    /// and, with [`Recovery::Off`], dead ones aside).
    pub async fn wait_recovered(&self) {
        self.owned.subs.recovered().await
    }

    /// Starts one more sub pool at run time, at the next index.
    pub async fn add_sub_pool(&self, mut sub_pool: SubPool) -> Result<SubPoolInfo, ActorError> {
        same_secret_as_caller(self.owned.auth.as_ref(), self.address())?;
        sub_pool.auth = self.owned.auth.clone();
        let host = self.host().await?;
        let info = self.owned.subs.add(sub_pool, host.dir()).await?;
        map_address(info.address.clone(), info.internal.clone())?;
        self.owned.neighbourhood.sub_pool_serves(&info);
        self.owned.subs.announce().await;
        Ok(info)
    }

    /// Stops sub pool `index` for good (its process is killed; its index stays taken, and
    /// placing on it fails).
    pub fn remove_sub_pool(&self, index: usize) -> Result<(), ActorError> {
        let info = self.owned.subs.remove(index)?;
        let _ = unmap_address(&info.address);
        self.owned.neighbourhood.sub_pool_gone(index);
        Ok(())
    }

    /// Stops gracefully as [`ActorPool::shutdown`] does, its internal socket drained beside
    /// its listeners within the same grace period; then its sub pools are killed.
    pub async fn shutdown(self) {
        let MainPool { owned, pool } = self;
        owned.unroute();
        let grace = pool.shutdown_grace();
        let host = async {
            if let Some(host) = owned.host.get() {
                let _ = tokio::time::timeout(grace, host.server().shutdown()).await;
            }
        };
        futures_util::future::join(pool.shutdown(), host).await;
        // Dropping `owned` now kills the sub pools.
    }

    /// Its host side, made (and the monitor started) with the first sub pool.
    async fn host(&self) -> Result<&Host, ActorError> {
        let (pool, owned) = (&self.pool, &self.owned);
        let start = Host::start(
            pool.handle(),
            &owned.neighbourhood,
            &owned.subs,
            pool.transport_config(),
            pool.server_config().clone(),
        );
        owned.host.get_or_try_init(|| start).await
    }
}

/// Settings of a [`MainPool`] before it starts: the actor pool's, and its sub pools'. Every
/// method states its default.
#[must_use = "a builder does nothing until started"]
pub struct MainPoolBuilder {
    pool: ActorPoolBuilder,
    sub_pools: Vec<SubPool>,
    label: String,
    recovery: Recovery,
    exit_hook: Option<ExitHook>,
}

impl std::fmt::Debug for MainPoolBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MainPoolBuilder")
            .field("pool", &self.pool)
            .field("sub_pools", &self.sub_pools)
            .field("label", &self.label)
            .field("recovery", &self.recovery)
            .finish_non_exhaustive()
    }
}

impl MainPoolBuilder {
    /// Starts `sub_pool` with this pool: a child process of this executable (whose `main`
    /// begins with [`crate::run_if_sub_pool`]) serving an actor pool with its own environment,
    /// label and addresses. [`MainPoolBuilder::start`] returns once every sub pool serves, or
    /// fails naming the sub pool that did not (and leaves no process behind). This process
    /// reaches each through its internal Unix socket. Default: none.
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
    /// ([`xoscar_actor::Placement::Label`]). Default: none (empty).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Starts the actor pool, then its sub pools (with its shared secret, which must be this
    /// process's caller's: [`ActorPoolBuilder::auth_token`]); returns once every one serves.
    /// On failure nothing is left behind.
    pub async fn start(self) -> Result<MainPool, ActorError> {
        let MainPoolBuilder { pool, mut sub_pools, label, recovery, exit_hook } = self;
        let made: Arc<OnceLock<Arc<Neighbourhood>>> = Arc::default();
        let slot = made.clone();
        let recipes = recovery == Recovery::Actors;
        let pool = pool
            .neighbours(move |handle| {
                let neighbourhood = Arc::new(Neighbourhood::new(handle, label, recipes, None));
                let _ = slot.set(neighbourhood.clone());
                neighbourhood
            })
            .start()
            .await?;
        let neighbourhood = made.get().cloned().ok_or_else(|| ActorError::Setup {
            address: pool.address().to_string(),
            reason: "the pool started without its neighbours".to_owned(),
        })?;
        let auth = pool.transport_config().get_auth_token().cloned();
        if !sub_pools.is_empty() {
            same_secret_as_caller(auth.as_ref(), pool.address())?;
        }
        for spec in &mut sub_pools {
            spec.auth = auth.clone();
        }
        let subs = Arc::new(SubPools::new(recovery, exit_hook));
        let host = tokio::sync::OnceCell::new();
        let main = MainPool { owned: Owned { subs, neighbourhood, host, auth }, pool };
        if sub_pools.is_empty() {
            return Ok(main);
        }
        // On failure the pool, and the sub pools started, are dropped: nothing is left behind.
        let host = main.host().await?;
        let running = start_all(sub_pools, host.dir(), host.internal()).await?;
        for sub in &running {
            map_address(sub.info.address.clone(), sub.info.internal.clone())?;
            main.owned.neighbourhood.sub_pool_serves(&sub.info);
        }
        main.owned.subs.extend(running);
        main.owned.subs.announce().await;
        Ok(main)
    }
}

/// Sub pools get `ours` and this process calls them with its caller's secret: the two must
/// be equal, or the sub pools would refuse every call of their main pool.
fn same_secret_as_caller(ours: Option<&AuthToken>, address: &Address) -> Result<(), ActorError> {
    if caller()?.config().transport().get_auth_token() == ours {
        return Ok(());
    }
    Err(ActorError::Setup {
        address: address.to_string(),
        reason: "this pool's auth token differs from this process's caller's \
                 (xoscar::configure or XOSCAR_AUTH_TOKEN): its sub pools would refuse its calls"
            .to_owned(),
    })
}

/// The sub pool settings of [`MainPoolBuilder`] on an [`ActorPoolBuilder`] itself: each
/// turns it into a main pool's builder (import this trait: `use xoscar::WithSubPools`).
pub trait WithSubPools {
    /// [`MainPoolBuilder::sub_pool`].
    fn sub_pool(self, sub_pool: SubPool) -> MainPoolBuilder;
    /// [`MainPoolBuilder::recovery`].
    fn recovery(self, recovery: Recovery) -> MainPoolBuilder;
    /// [`MainPoolBuilder::on_sub_pool_exit`].
    fn on_sub_pool_exit(
        self,
        hook: impl Fn(&SubPoolInfo, std::process::ExitStatus) + Send + Sync + 'static,
    ) -> MainPoolBuilder;
    /// [`MainPoolBuilder::label`].
    fn label(self, label: impl Into<String>) -> MainPoolBuilder;
}

impl WithSubPools for ActorPoolBuilder {
    fn sub_pool(self, sub_pool: SubPool) -> MainPoolBuilder {
        MainPool::builder(self).sub_pool(sub_pool)
    }

    fn recovery(self, recovery: Recovery) -> MainPoolBuilder {
        MainPool::builder(self).recovery(recovery)
    }

    fn on_sub_pool_exit(
        self,
        hook: impl Fn(&SubPoolInfo, std::process::ExitStatus) + Send + Sync + 'static,
    ) -> MainPoolBuilder {
        MainPool::builder(self).on_sub_pool_exit(hook)
    }

    fn label(self, label: impl Into<String>) -> MainPoolBuilder {
        MainPool::builder(self).label(label)
    }
}
