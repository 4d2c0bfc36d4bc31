//! [`PoolHandle`]: what code inside a pool (a handler, through its context) holds of it, and
//! [`CreateActor`], a create in it.

use std::future::IntoFuture;
use std::sync::Arc;

use tokio::runtime::Handle;
use xoscar_transport::Address;
use xoscar_wire::Payloads;

use crate::actor::cell::BoxFuture;
use crate::actor::core::Core;
use crate::actor::runner::Mode;
use crate::{Actor, ActorError, ActorRef};

/// A cheap, cloneable handle to an actor pool, as handlers see it through
/// [`crate::Context::pool`]. It does not keep the pool running: once the [`crate::ActorPool`] is
/// dropped, creates fail.
#[derive(Clone)]
pub struct PoolHandle {
    pub(crate) core: Arc<Core>,
}

impl std::fmt::Debug for PoolHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolHandle")
            .field("address", &self.core.address.to_string())
            .field("actors", &self.core.len())
            .finish()
    }
}

impl PoolHandle {
    /// The pool's address, as refs to its actors carry it (with the port a listener on port 0
    /// was given).
    pub fn address(&self) -> &Address {
        &self.core.address
    }

    /// How many actors live in the pool.
    pub fn actor_count(&self) -> usize {
        self.core.len()
    }

    /// Creates `actor` in this pool. Await it; options: [`CreateActor::uid`],
    /// [`CreateActor::concurrent`]. The start hook has run when it completes.
    pub fn create<A: Actor>(&self, actor: A) -> CreateActor<A> {
        CreateActor { pool: self.clone(), actor, uid: None, mode: Mode::Serial }
    }

    pub(crate) fn runtime(&self) -> &Handle {
        &self.core.runtime
    }

    /// A handle that does not keep the pool's state alive (for what the pool itself holds,
    /// such as its neighbours).
    pub fn downgrade(&self) -> WeakPoolHandle {
        WeakPoolHandle { core: Arc::downgrade(&self.core) }
    }

    /// Creates an actor of the type registered as `type_name` in this pool, from its encoded
    /// init message, under `uid` (default: one the pool generates); returns its uid. The same
    /// as a create request sent to this pool with [`crate::Placement::Here`].
    pub async fn create_registered(
        &self,
        type_name: &str,
        init: Payloads,
        uid: Option<Arc<str>>,
    ) -> Result<Arc<str>, ActorError> {
        self.core.create_by_name(type_name, init, uid).await
    }

    /// Runs `work` on the pool's runtime until it ends or the pool is dropped, whichever comes
    /// first (then it is dropped where it waits): work the pool owns.
    pub fn spawn_owned(&self, work: impl Future<Output = ()> + Send + 'static) {
        self.core.spawn_owned(work);
    }
}

/// A [`PoolHandle`] that does not keep the pool's state alive ([`PoolHandle::downgrade`]).
#[derive(Clone, Debug)]
pub struct WeakPoolHandle {
    core: std::sync::Weak<Core>,
}

impl WeakPoolHandle {
    /// The pool, unless its state is gone.
    pub fn upgrade(&self) -> Option<PoolHandle> {
        self.core.upgrade().map(|core| PoolHandle { core })
    }
}

/// A pending [`PoolHandle::create`]: set options, then await it.
#[must_use = "a create does nothing until awaited"]
pub struct CreateActor<A> {
    pool: PoolHandle,
    actor: A,
    uid: Option<Arc<str>>,
    mode: Mode<A>,
}

impl<A: Actor> CreateActor<A> {
    /// The uid to create the actor under. Default: `<type name>-<pid in hex>.<n>`, unique on
    /// the host (a main pool finds its sub pools' actors by uid). A uid in use is
    /// [`ActorError::AlreadyExists`].
    pub fn uid(mut self, uid: impl Into<Arc<str>>) -> Self {
        self.uid = Some(uid.into());
        self
    }

    /// Runs up to `limit` handlers at once (at least 1), each on its own clone of the actor
    /// (xoscar's stateless actor): share state through `Arc`s inside it. A panicking handler
    /// fails its own call only. Default: serial, one handler at a time on the one actor.
    pub fn concurrent(mut self, limit: usize) -> Self
    where
        A: Clone,
    {
        self.mode = Mode::Concurrent { clone: A::clone, limit: limit.max(1) };
        self
    }
}

impl<A: Actor> IntoFuture for CreateActor<A> {
    type Output = Result<ActorRef<A>, ActorError>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move { self.pool.core.spawn(self.actor, self.uid, self.mode).await })
    }
}
