//! What a main pool keeps for its sub pools, made with its first one (at start or when one is
//! added later): a private directory for the host-internal Unix sockets, its own internal
//! socket there (which only its sub pools' processes may send actor-gone notices on), and the
//! monitor that watches the sub pools.

use std::sync::Arc;

use tokio::task::AbortHandle;
use xoscar_pool::{Server, ServerConfig};
use xoscar_transport::{Address, TransportConfig, listen};

use xoscar_actor::extension::Ingress;
use xoscar_actor::{ActorError, PoolHandle};

use crate::dir::PrivateDir;
use crate::monitor::{SubPools, monitor};
use crate::neighbourhood::Neighbourhood;

/// A main pool's side of its host: dropped (directory and all) with the pool.
pub(crate) struct Host {
    server: Server,
    monitor: AbortHandle,
    internal: Address,
    /// Last: the sockets inside go with it.
    dir: PrivateDir,
}

impl Host {
    /// Makes the private directory, serves the main pool's internal socket in it and starts
    /// watching `subs`.
    pub(crate) async fn start(
        pool: &PoolHandle,
        neighbourhood: &Arc<Neighbourhood>,
        subs: &Arc<SubPools>,
        transport: &TransportConfig,
        server: ServerConfig,
    ) -> Result<Host, ActorError> {
        let dir = tokio::task::spawn_blocking(PrivateDir::create).await.map_err(|error| {
            ActorError::Setup { address: pool.address().to_string(), reason: error.to_string() }
        })??;
        let internal = Address::unix(dir.path().join("main.sock"));
        let setup = |reason: String| ActorError::Setup { address: internal.to_string(), reason };
        let listener = listen(&internal, transport).await.map_err(|e| setup(e.to_string()))?;
        let server = pool.serve(listener, Ingress::MainInternal, server)?;
        subs.set_main_route(pool.address().clone(), internal.clone());
        let monitor =
            tokio::spawn(monitor(subs.clone(), Arc::downgrade(neighbourhood))).abort_handle();
        Ok(Host { server, monitor, internal, dir })
    }

    /// The directory the sub pools' sockets go in.
    pub(crate) fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The main pool's internal socket.
    pub(crate) fn internal(&self) -> &Address {
        &self.internal
    }

    pub(crate) fn server(&self) -> &Server {
        &self.server
    }

    /// Stops watching and serving at once (the pool is dropped).
    pub(crate) fn abort(&self) {
        self.monitor.abort();
        self.server.abort();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // The monitor's owner: it never outlives the host, however the host goes.
        self.monitor.abort();
    }
}
