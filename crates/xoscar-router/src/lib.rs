//! Address mapping for xoscar-rs: which concrete endpoint reaches an actor address.
//!
//! Place in the stack: `xoscar-wire` < `xoscar-transport` < `xoscar-pool` < **`xoscar-router`**
//! < `xoscar-actor` < `xoscar`. It knows nothing of actor semantics: a pool of the caller's own
//! process is an opaque value `L` that the layer above registers and gets back.
//!
//! [`Router::resolve`] decides, in this order:
//!
//! 1. the address belongs to a pool of this process ([`Router::add_local`]) → [`Route::Local`]
//!    with that pool's value: deliver directly, no encoding, no socket (xoscar's `dummy://`);
//! 2. a mapping is configured for it ([`Router::map`], e.g. the TCP address of a pool on this
//!    host → its `unix://` address) → [`Route::Remote`] with the mapped endpoint;
//! 3. otherwise → [`Route::Remote`] with the address itself.
//!
//! Both tables change at run time; a change is seen by every later `resolve`. Addresses match
//! exactly as [`Address`] compares them: `localhost:80` and `127.0.0.1:80` are different keys.
//!
//! Every change also moves [`Router::version`], so a caller that resolves the same address
//! again and again can keep what [`Router::resolve_versioned`] said and trust it while the
//! version stays the same: one atomic load instead of a lock and two lookups.
//!
//! ```
//! use std::borrow::Cow;
//!
//! use xoscar_router::{Route, Router};
//! use xoscar_transport::Address;
//!
//! let router: Router<&'static str> = Router::new();
//! let external: Address = "10.0.0.7:9000".parse().unwrap();
//! let internal: Address = "unix:///tmp/pool-9000.sock".parse().unwrap();
//! assert_eq!(router.resolve(&external), Route::Remote(Cow::Borrowed(&external)));
//!
//! router.map(external.clone(), internal.clone());
//! assert_eq!(router.resolve(&external), Route::Remote(Cow::Owned(internal)));
//!
//! router.add_local(external.clone(), "my pool");
//! assert_eq!(router.resolve(&external), Route::Local("my pool"));
//! ```

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use foldhash::fast::RandomState;
use parking_lot::RwLock;
use xoscar_transport::Address;

/// How to reach an address. `'a` is the asked address's lifetime: an unmapped address is
/// handed back borrowed, so resolving it allocates nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route<'a, L> {
    /// A pool of this process: hand the value over directly.
    Local(L),
    /// Dial this endpoint (the address itself, or what it is mapped to).
    Remote(Cow<'a, Address>),
}

/// The address tables of one process: its own pools, and mappings from external addresses to
/// the endpoints that reach them best. Cheap to read concurrently; writes are rare (a pool
/// starts or stops, a mapping is configured).
pub struct Router<L> {
    tables: RwLock<Tables<L>>,
    /// Moved by every change to the tables, under the write lock (see [`Router::version`]).
    version: AtomicU64,
}

struct Tables<L> {
    local: HashMap<Address, L, RandomState>,
    mapped: HashMap<Address, Address, RandomState>,
}

impl<L> Default for Router<L> {
    fn default() -> Self {
        Router {
            tables: RwLock::new(Tables { local: HashMap::default(), mapped: HashMap::default() }),
            version: AtomicU64::new(0),
        }
    }
}

impl<L> std::fmt::Debug for Router<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tables = self.tables.read();
        f.debug_struct("Router")
            .field("local", &tables.local.keys().collect::<Vec<_>>())
            .field("mapped", &tables.mapped)
            .finish()
    }
}

impl<L: Clone> Router<L> {
    /// An empty router: every address resolves to itself.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where `address` is reached now.
    pub fn resolve<'a>(&self, address: &'a Address) -> Route<'a, L> {
        Self::route(&self.tables.read(), address)
    }

    /// [`Router::resolve`], with the [`Router::version`] of the tables it read: while the
    /// version is still that, `resolve` gives the same route.
    ///
    /// ```
    /// use xoscar_router::Router;
    /// use xoscar_transport::Address;
    ///
    /// let router: Router<()> = Router::new();
    /// let address: Address = "10.0.0.7:9000".parse().unwrap();
    /// let (version, route) = router.resolve_versioned(&address);
    /// assert_eq!(router.version(), version, "nothing changed: the route holds");
    ///
    /// router.map(address.clone(), "unix:///tmp/pool.sock".parse().unwrap());
    /// assert_ne!(router.version(), version, "a mapping moved it: resolve again");
    /// assert_ne!(router.resolve(&address), route);
    /// ```
    pub fn resolve_versioned<'a>(&self, address: &'a Address) -> (u64, Route<'a, L>) {
        let tables = self.tables.read();
        // Read under the lock: writers move it under theirs, so it names these tables.
        (self.version.load(Ordering::Acquire), Self::route(&tables, address))
    }

    /// A number that changes whenever the tables change (a local pool added or removed, a
    /// mapping set or removed); it never comes back to an earlier value. A route read at
    /// one version is the route while the version stays the same.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The tables, to be changed. The version moves while the write lock is held, and
    /// `resolve_versioned` reads it under the read lock, so a version always names the tables
    /// it was read with.
    fn write(&self) -> parking_lot::RwLockWriteGuard<'_, Tables<L>> {
        let tables = self.tables.write();
        self.version.fetch_add(1, Ordering::Release);
        tables
    }

    fn route<'a>(tables: &Tables<L>, address: &'a Address) -> Route<'a, L> {
        if let Some(local) = tables.local.get(address) {
            return Route::Local(local.clone());
        }
        match tables.mapped.get(address) {
            Some(mapped) => Route::Remote(Cow::Owned(mapped.clone())),
            None => Route::Remote(Cow::Borrowed(address)),
        }
    }

    /// Declares `address` to be served by a pool of this process, reached through `local`.
    /// Returns the value it replaces, if the address was already local.
    pub fn add_local(&self, address: Address, local: L) -> Option<L> {
        self.write().local.insert(address, local)
    }

    /// Forgets that `address` is local; returns its value, if it was.
    pub fn remove_local(&self, address: &Address) -> Option<L> {
        self.write().local.remove(address)
    }

    /// Removes every local address whose value `matches`; returns how many.
    pub fn remove_local_where(&self, mut matches: impl FnMut(&L) -> bool) -> usize {
        let mut tables = self.write();
        let before = tables.local.len();
        tables.local.retain(|_, local| !matches(local));
        before - tables.local.len()
    }

    /// Sends calls for `external` to `internal` from now on (for example a pool's TCP address
    /// to its Unix socket on the same host). Returns the mapping it replaces. A local pool at
    /// `external` still wins over a mapping.
    pub fn map(&self, external: Address, internal: Address) -> Option<Address> {
        self.write().mapped.insert(external, internal)
    }

    /// Removes the mapping of `external`; returns it, if there was one.
    pub fn unmap(&self, external: &Address) -> Option<Address> {
        self.write().mapped.remove(external)
    }
}
