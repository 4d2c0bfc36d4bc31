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
}

struct Tables<L> {
    local: HashMap<Address, L, RandomState>,
    mapped: HashMap<Address, Address, RandomState>,
}

impl<L> Default for Router<L> {
    fn default() -> Self {
        Router {
            tables: RwLock::new(Tables { local: HashMap::default(), mapped: HashMap::default() }),
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
        let tables = self.tables.read();
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
        self.tables.write().local.insert(address, local)
    }

    /// Forgets that `address` is local; returns its value, if it was.
    pub fn remove_local(&self, address: &Address) -> Option<L> {
        self.tables.write().local.remove(address)
    }

    /// Removes every local address whose value `matches`; returns how many.
    pub fn remove_local_where(&self, mut matches: impl FnMut(&L) -> bool) -> usize {
        let mut tables = self.tables.write();
        let before = tables.local.len();
        tables.local.retain(|_, local| !matches(local));
        before - tables.local.len()
    }

    /// Sends calls for `external` to `internal` from now on (for example a pool's TCP address
    /// to its Unix socket on the same host). Returns the mapping it replaces. A local pool at
    /// `external` still wins over a mapping.
    pub fn map(&self, external: Address, internal: Address) -> Option<Address> {
        self.tables.write().mapped.insert(external, internal)
    }

    /// Removes the mapping of `external`; returns it, if there was one.
    pub fn unmap(&self, external: &Address) -> Option<Address> {
        self.tables.write().mapped.remove(external)
    }
}
