//! The extension point through which a pool works with the other pools of its host (a main
//! pool's sub pools, a sub pool's main pool) without knowing anything of processes: the
//! [`Neighbours`] a layer above gives a pool, and the [`Ingress`] of each listener.
//!
//! A pool consults it only off its hot path: for a uid it does not hold, for a create placed
//! anywhere but here, when one of its actors leaves, and for the two requests only pools of
//! one host send each other (routes, actor-gone notices). A pool without neighbours holds
//! exactly its own actors and places them only in itself.
//!
//! Uses only the error and placement types; the sub pool layer implements it.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use xoscar_pool::{Message, Responder};
use xoscar_transport::Address;
use xoscar_wire::Payloads;

use crate::error::ActorError;
use crate::placement::Placement;

/// What a pool asks of the other pools of its host. Given to a pool with
/// [`crate::ActorPoolBuilder::neighbours`]; implemented by the sub pool layer
/// (`xoscar-subpool`). Without it a pool holds exactly its own actors and places them only
/// in itself.
pub trait Neighbours: Send + Sync + 'static {
    /// Whether another pool may hold actors this one does not (a main pool with sub pools):
    /// only then are forwarding and locating worth trying.
    fn any(&self) -> bool;

    /// Where `uid` was last noted to live, asking nobody.
    fn noted(&self, uid: &str) -> Option<Address>;

    /// Where `uid` lives among the other pools, asking them if need be (then noted).
    fn locate<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, Option<Address>>;

    /// Destroys `uid` in the pool at `at` and forgets where it lived.
    fn destroy_at<'a>(
        &'a self,
        at: &'a Address,
        uid: &'a str,
    ) -> BoxFuture<'a, Result<(), ActorError>>;

    /// Sends `request`, for `uid`, which this pool does not hold, on to the pool holding it
    /// and answers `responder` with that pool's answer (or `NotFound`). The caller's cancel
    /// and deadline reach the other pool.
    fn forward(self: Arc<Self>, uid: Arc<str>, request: Message, responder: Responder);

    /// Creates an actor of `type_name` where `placement` (anything but
    /// [`Placement::Here`]) says; its uid and the address of the pool it landed in.
    fn create<'a>(
        &'a self,
        type_name: &'a str,
        init: Payloads,
        uid: Option<Arc<str>>,
        placement: &'a Placement,
    ) -> BoxFuture<'a, Result<(Arc<str>, Address), ActorError>>;

    /// The actor `uid` left this pool (destroyed, or stopped after a panic): what it held is
    /// freed, and the future, if any, tells whoever else must know (a sub pool's main pool).
    fn left(&self, uid: &str) -> Option<BoxFuture<'static, ()>>;

    /// An actor-gone notice for `uid` from the process `pid`: whether it was taken (only from
    /// a sub pool of this pool, and it forgets only what lived there).
    fn gone_from(&self, pid: u32, uid: &str) -> bool;

    /// The routes (external address, internal address) of this host's pools, from the main
    /// pool: they replace the ones it sent before.
    fn routes(&self, routes: Vec<(Address, Address)>) -> Result<(), ActorError>;
}

/// Which listener of its pool a request came in on, and so which requests it takes beyond
/// calls, creates and destroys (docs/security.md keeps the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingress {
    /// The pool's address, or an internal address a user added: anyone who may connect.
    Public,
    /// A sub pool's internal Unix socket: also `Routes`, from its main pool's process.
    SubPoolInternal {
        /// The main pool's process id.
        main_pid: u32,
    },
    /// A main pool's internal Unix socket: also actor-gone notices, from its sub pools'
    /// processes ([`Neighbours::gone_from`] decides).
    MainInternal,
}
