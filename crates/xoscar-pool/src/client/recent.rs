//! Handles for callers that call one endpoint again and again: [`RecentConnection`] remembers
//! the connection of the last call, [`Endpoint`] pairs it with its pool and address.
//!
//! Looking a connection up takes two maps (the runtime's state, then the endpoint's connection:
//! a lock and a hash of the address each). A call made with a [`RecentConnection`] takes a
//! lease on the remembered connection instead, when it is
//! the same pool's and runtime's, to the same endpoint, and still takes leases; otherwise it
//! goes the plain way and remembers what it found. A connection stops taking leases before it
//! leaves the pool's map (reaped, closing, gone away, ended), so a remembered one is used only
//! while the map would have given the same. A plain [`Pool::call`] uses the pool's own (one
//! entry, shared by all its plain calls), so calls to one endpoint in a row skip the maps too.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::runtime::Id as RuntimeId;
use xoscar_transport::Address;

use super::conn::Conn;
use super::{Pool, PoolShared};
use crate::{Message, PoolError};

/// The connection of the last call made with it, for the next call to the same endpoint to
/// skip the pool's lookups (see [`Pool::call_remembering`]). Holds no connection open: it
/// keeps a weak reference, and a connection reaped or closed is simply looked up afresh.
///
/// Keep one per caller that calls one endpoint repeatedly (an actor ref does), shared by its
/// clones. Used with another pool, endpoint or runtime, it only misses: each call checks all
/// three.
#[derive(Default)]
pub struct RecentConnection {
    last: Mutex<Option<Remembered>>,
}

/// A connection, with the pool and the runtime it belongs to.
struct Remembered {
    /// Weak: it only identifies the pool (and keeps its address from being reused).
    pool: Weak<PoolShared>,
    runtime: RuntimeId,
    conn: Weak<Conn>,
}

impl std::fmt::Debug for RecentConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let remembered = self.last.lock().as_ref().and_then(|last| last.conn.upgrade());
        let endpoint = remembered.as_ref().map(|conn| &conn.label);
        f.debug_struct("RecentConnection").field("endpoint", &endpoint).finish()
    }
}

impl RecentConnection {
    /// The remembered connection if it is `pool`'s on `runtime` and reaches `endpoint` (the
    /// caller then takes its lease, which a connection leaving the pool's map refuses).
    pub(super) fn conn(
        &self,
        pool: &Arc<PoolShared>,
        runtime: RuntimeId,
        endpoint: &Address,
    ) -> Option<Arc<Conn>> {
        let conn = match &*self.last.lock() {
            Some(last)
                if last.runtime == runtime
                    && std::ptr::eq(last.pool.as_ptr(), Arc::as_ptr(pool)) =>
            {
                last.conn.upgrade()?
            }
            _ => return None,
        };
        (conn.endpoint == *endpoint).then_some(conn)
    }

    /// Remembers `conn`, `pool`'s connection on `runtime`, for the next call.
    pub(super) fn remember(&self, pool: &Arc<PoolShared>, runtime: RuntimeId, conn: &Arc<Conn>) {
        let (pool, conn) = (Arc::downgrade(pool), Arc::downgrade(conn));
        *self.last.lock() = Some(Remembered { pool, runtime, conn });
    }
}

/// A handle on one endpoint of a [`Pool`]: calls through it behave exactly as
/// [`Pool::call`] to its address, and skip the pool's per-call lookups while its connection
/// lasts (see [`RecentConnection`]). Made by [`Pool::endpoint`]; cheap to clone, clones share
/// the remembered connection.
#[derive(Clone, Debug)]
pub struct Endpoint {
    shared: Arc<EndpointShared>,
}

#[derive(Debug)]
struct EndpointShared {
    pool: Pool,
    address: Address,
    recent: RecentConnection,
}

impl Pool {
    /// A handle for calling `address` again and again (see [`Endpoint`]). Dials nothing
    /// until its first call.
    pub fn endpoint(&self, address: Address) -> Endpoint {
        let recent = RecentConnection::default();
        Endpoint { shared: Arc::new(EndpointShared { pool: self.clone(), address, recent }) }
    }
}

impl Endpoint {
    /// The address its calls go to.
    pub fn address(&self) -> &Address {
        &self.shared.address
    }

    /// The pool its calls go through.
    pub fn pool(&self) -> &Pool {
        &self.shared.pool
    }

    /// [`Pool::call`] to this endpoint: within the pool's call timeout if one is set; dropping
    /// the future releases the call's lease and tells the server to cancel it.
    #[inline]
    pub fn call(
        &self,
        request: Message,
    ) -> impl Future<Output = Result<Message, PoolError>> + Send + '_ {
        let timeout = self.shared.pool.config().call_timeout();
        self.call_with_timeout(request, timeout)
    }

    /// [`Pool::call_with_timeout`] to this endpoint (`None`: wait as long as the connection
    /// lives).
    #[inline]
    pub fn call_with_timeout(
        &self,
        request: Message,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<Message, PoolError>> + Send + '_ {
        let EndpointShared { pool, address, recent } = &*self.shared;
        pool.call_remembering(address, request, timeout, recent)
    }
}
