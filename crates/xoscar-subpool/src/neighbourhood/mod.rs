//! A pool's [`Neighbours`] as the sub pool layer keeps them: for a main pool, its sub pools
//! and where its actors live among them; for a sub pool, its main pool and the routes it sent.
//! Placement and the topology behind it are in `topology`, forwarding in `forward`.

pub(crate) mod forward;
pub(crate) mod topology;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use parking_lot::Mutex;
use xoscar_pool::{Message, Responder};
use xoscar_transport::Address;
use xoscar_wire::Payloads;

use xoscar_actor::extension::{Neighbours, WeakPoolHandle};
use xoscar_actor::{ActorError, Placement, PoolHandle, map_address, unmap_address};

use forward::gone_notice;
use topology::Topology;

/// The other pools of one pool's host.
pub(crate) struct Neighbourhood {
    /// The pool's own address.
    pub(crate) address: Address,
    /// The pool: creates placed in it go there, and its tasks run forwards.
    pool: WeakPoolHandle,
    /// Its label, its sub pools, and where actors placed in them live.
    pub(crate) topology: Mutex<Topology>,
    /// The external addresses this (sub) pool mapped from its main pool's last routes.
    routes: Mutex<Vec<Address>>,
    /// In a sub pool: its main pool's internal socket, where it reports actors gone.
    main_internal: Option<Address>,
}

impl Neighbourhood {
    /// The neighbours of the pool `core`, labelled `label`; `recipes`: keep how actors were
    /// placed in sub pools, to create them again after a restart; `main_internal`: in a sub
    /// pool, where its main pool hears of actors gone.
    pub(crate) fn new(
        pool: &PoolHandle,
        label: String,
        recipes: bool,
        main_internal: Option<Address>,
    ) -> Self {
        let topology = Topology::new(label, recipes);
        Neighbourhood {
            address: pool.address().clone(),
            pool: pool.downgrade(),
            topology: Mutex::new(topology),
            routes: Mutex::default(),
            main_internal,
        }
    }

    /// The pool, unless it is gone.
    pub(crate) fn pool(&self) -> Result<PoolHandle, ActorError> {
        self.pool.upgrade().ok_or_else(|| ActorError::Setup {
            address: self.address.to_string(),
            reason: "the pool is gone".to_owned(),
        })
    }

    pub(crate) fn not_found(&self, uid: &str) -> ActorError {
        ActorError::NotFound { address: self.address.to_string(), uid: uid.to_owned() }
    }
}

impl Neighbours for Neighbourhood {
    fn any(&self) -> bool {
        self.has_sub_pools()
    }

    fn noted(&self, uid: &str) -> Option<Address> {
        self.located(uid)
    }

    fn locate<'a>(&'a self, uid: &'a str) -> BoxFuture<'a, Option<Address>> {
        Box::pin(self.locate_uid(uid))
    }

    fn destroy_at<'a>(
        &'a self,
        at: &'a Address,
        uid: &'a str,
    ) -> BoxFuture<'a, Result<(), ActorError>> {
        Box::pin(self.destroy_uid_at(at, uid))
    }

    fn forward(self: Arc<Self>, uid: Arc<str>, request: Message, responder: Responder) {
        self.forward_to_holder(uid, request, responder);
    }

    fn create<'a>(
        &'a self,
        type_name: &'a str,
        init: Payloads,
        uid: Option<Arc<str>>,
        placement: &'a Placement,
    ) -> BoxFuture<'a, Result<(Arc<str>, Address), ActorError>> {
        Box::pin(self.create_placed(type_name, init, uid, placement))
    }

    fn left(&self, uid: &str) -> Option<BoxFuture<'static, ()>> {
        // The idle-label hold it had on this pool itself is free.
        self.forget_at(uid, &self.address);
        let main = self.main_internal.clone()?;
        Some(Box::pin(gone_notice(main, uid.into())))
    }

    fn gone_from(&self, pid: u32, uid: &str) -> bool {
        let Some(at) = self.sub_pool_of_pid(pid) else { return false };
        self.forget_at(uid, &at);
        true
    }

    fn routes(&self, routes: Vec<(Address, Address)>) -> Result<(), ActorError> {
        let mut held = self.routes.lock();
        for old in held.iter() {
            if !routes.iter().any(|(external, _)| external == old) {
                unmap_address(old)?;
            }
        }
        held.clear();
        for (external, internal) in routes {
            held.push(external.clone());
            map_address(external, internal)?;
        }
        Ok(())
    }
}
