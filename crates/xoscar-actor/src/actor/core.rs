//! The state of one actor pool: its actors by uid, its registered types, its runtime.

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};

use foldhash::fast::RandomState;
use parking_lot::{MappedRwLockReadGuard, RwLock, RwLockReadGuard};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use xoscar_transport::Address;

use crate::actor::cell::{AnyCell, BoxFuture, Cell};
use crate::actor::mailbox;
use crate::actor::runner::{self, Mode};
use crate::exposed::ExposedBuffers;
use crate::neighbours::Neighbours;
use crate::observe::debug::Thresholds;
use crate::placement::Placement;
use crate::{Actor, ActorError, ActorRef, Context, Failure, actor::remote, wire::body};
use xoscar_wire::Payloads;

/// Makes an actor of a registered type from its encoded init message; returns its uid.
pub(crate) type Factory = Arc<
    dyn Fn(
            Arc<Core>,
            Payloads,
            Option<Arc<str>>,
        ) -> BoxFuture<'static, Result<Arc<str>, ActorError>>
        + Send
        + Sync,
>;

/// An actor's uid as the key of a pool's map, found by its bytes too: a uid read off the wire
/// is looked up without a UTF-8 check (one that is not UTF-8 is simply not there).
#[derive(Clone, PartialEq, Eq)]
struct UidKey(Arc<str>);

impl std::hash::Hash for UidKey {
    /// As its bytes hash, which `Borrow<[u8]>` requires.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.as_bytes().hash(state);
    }
}

impl std::borrow::Borrow<[u8]> for UidKey {
    fn borrow(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

pub(crate) struct Core {
    pub(crate) address: Address,
    actors: RwLock<HashMap<UidKey, Arc<dyn AnyCell>, RandomState>>,
    pub(crate) factories: HashMap<String, Factory, RandomState>,
    next_incarnation: AtomicU64,
    pub(crate) mailbox_capacity: usize,
    pub(crate) debug: Thresholds,
    /// Whether handled messages are reported through the `metrics` facade.
    pub(crate) metered: bool,
    pub(crate) runtime: Handle,
    /// Parent of every actor's lifetime.
    lifetime: CancellationToken,
    /// Every actor task the pool started and that has not ended: aborted with the pool.
    tasks: parking_lot::Mutex<tokio::task::JoinSet<()>>,
    /// Buffers exposed for writes by reference: by id, with their secret key.
    pub(crate) buffers: ExposedBuffers,
    /// The other pools of its host, if any (set once, by the layer that makes them).
    neighbours: OnceLock<Arc<dyn Neighbours>>,
}

/// An actor's registration in its pool. Dropping it forgets the uid (unless it was given to
/// a newer actor meanwhile) and ends the actor's lifetime.
pub(crate) struct Registration {
    core: Weak<Core>,
    uid: Arc<str>,
    incarnation: u64,
    lifetime: CancellationToken,
}

impl Registration {
    pub(crate) fn lifetime(&self) -> &CancellationToken {
        &self.lifetime
    }

    /// Forgets the uid now (unless it was given to a newer actor meanwhile); returns the pool
    /// if it did.
    fn leave(&mut self) -> Option<Arc<Core>> {
        self.lifetime.cancel();
        let core = self.core.upgrade()?;
        let removed = {
            let mut actors = core.actors.write();
            let uid = self.uid.as_bytes();
            let ours = actors.get(uid).is_some_and(|c| c.incarnation() == self.incarnation);
            ours.then(|| actors.remove(uid)).flatten()
        };
        removed.map(|cell| cell.unregister()).map(|()| core)
    }

    /// Forgets the uid of an actor that stopped by itself (a panic) and lets what placed it
    /// know: this pool's idle-label hold, and in a sub pool its main pool. The receiver
    /// completes once the main pool was told, so the caller hears of the panic after that.
    pub(crate) fn retire_reporting(mut self) -> Option<oneshot::Receiver<()>> {
        let core = self.leave()?;
        core.left(&self.uid)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.leave();
    }
}

impl Core {
    pub(crate) fn new(
        address: Address,
        factories: HashMap<String, Factory, RandomState>,
        mailbox_capacity: usize,
        debug: Thresholds,
        metered: bool,
        runtime: Handle,
    ) -> Self {
        Core {
            address,
            actors: RwLock::default(),
            factories,
            next_incarnation: AtomicU64::new(1),
            mailbox_capacity,
            debug,
            metered,
            runtime,
            lifetime: CancellationToken::new(),
            tasks: Default::default(),
            buffers: Default::default(),
            neighbours: OnceLock::new(),
        }
    }

    /// Gives the pool its neighbours; the first set stays.
    pub(crate) fn set_neighbours(&self, neighbours: Arc<dyn Neighbours>) {
        let _ = self.neighbours.set(neighbours);
    }

    /// The other pools of its host, if it has any.
    pub(crate) fn neighbours(&self) -> Option<&Arc<dyn Neighbours>> {
        self.neighbours.get()
    }

    /// Where `uid`, which this pool does not hold, lives among its neighbours (asking them).
    pub(crate) async fn locate_elsewhere(&self, uid: &str) -> Option<Address> {
        match self.neighbours.get() {
            Some(neighbours) => neighbours.locate(uid).await,
            None => None,
        }
    }

    /// The actor `uid` left this pool (destroyed, or stopped after a panic): its neighbours
    /// free what it held and are told in a task of the pool (so a destroy given up meanwhile
    /// still tells); the receiver completes once they were told, or gave up. Not for the
    /// pool's own end.
    pub(crate) fn left(self: &Arc<Self>, uid: &str) -> Option<oneshot::Receiver<()>> {
        let notice = self.neighbours.get()?.left(uid)?;
        let (done, finished) = oneshot::channel();
        self.spawn_owned(async move {
            notice.await;
            let _ = done.send(());
        });
        Some(finished)
    }

    /// Creates an actor of `type_name` where `placement` says: here, or through its
    /// neighbours in another pool of its host. Returns its uid and its pool's address.
    pub(crate) async fn create_placed(
        self: &Arc<Self>,
        type_name: &str,
        init: Payloads,
        uid: Option<Arc<str>>,
        placement: &Placement,
    ) -> Result<(Arc<str>, Address), ActorError> {
        let here = match placement {
            Placement::Here => true,
            Placement::Address(address) => *address == self.address,
            _ => false,
        };
        if here {
            let uid = self.create_by_name(type_name, init, uid).await?;
            return Ok((uid, self.address.clone()));
        }
        match self.neighbours.get() {
            Some(neighbours) => neighbours.create(type_name, init, uid, placement).await,
            None => Err(self.nowhere_but_here(placement)),
        }
    }

    pub(crate) fn not_found(&self, uid: &str) -> ActorError {
        ActorError::NotFound { address: self.address.to_string(), uid: uid.to_owned() }
    }

    /// The actor `uid`, any type.
    pub(crate) fn cell(&self, uid: &str) -> Result<Arc<dyn AnyCell>, ActorError> {
        self.cell_by_bytes(uid.as_bytes())
    }

    /// The actor whose uid is `uid`'s bytes (as read off the wire, unchecked), any type.
    pub(crate) fn cell_by_bytes(&self, uid: &[u8]) -> Result<Arc<dyn AnyCell>, ActorError> {
        let cell = self.actors.read().get(uid).cloned();
        cell.ok_or_else(|| self.not_found(&String::from_utf8_lossy(uid)))
    }

    /// The actor whose uid is `uid`'s bytes, borrowed under the registry's read lock: for work
    /// that does not wait (queueing a remote message), which then takes no count on the
    /// cell's `Arc` (two atomic operations a call). Creates and destroys wait meanwhile, and
    /// nothing done under it may take the registry's lock again (parking_lot's read lock is
    /// not reentrant once a writer waits).
    pub(crate) fn borrow_cell(&self, uid: &[u8]) -> Option<MappedRwLockReadGuard<'_, dyn AnyCell>> {
        RwLockReadGuard::try_map(self.actors.read(), |actors| actors.get(uid).map(|cell| &**cell))
            .ok()
    }

    pub(crate) fn has(&self, uid: &str) -> bool {
        self.actors.read().contains_key(uid.as_bytes())
    }

    pub(crate) fn len(&self) -> usize {
        self.actors.read().len()
    }

    /// Registers `actor` under `uid` (or a fresh uid), starts its task and waits for its
    /// start hook.
    pub(crate) async fn spawn<A: Actor>(
        self: &Arc<Self>,
        actor: A,
        uid: Option<Arc<str>>,
        mode: Mode<A>,
    ) -> Result<ActorRef<A>, ActorError> {
        let remote = remote::table::<A>()?;
        let (mailbox, inbox) = mailbox::channel(self.mailbox_capacity);
        let incarnation = self.next_incarnation.fetch_add(1, Relaxed);
        let (me, cell) = {
            let mut actors = self.actors.write();
            let uid = match uid {
                Some(uid) if actors.contains_key(uid.as_bytes()) => {
                    return Err(ActorError::AlreadyExists {
                        address: self.address.to_string(),
                        uid: uid.to_string(),
                    });
                }
                Some(uid) => uid,
                None => loop {
                    // Unique across this host's pools (process id, process-wide count): a main
                    // pool finds actors of its sub pools by uid.
                    static NEXT: AtomicU64 = AtomicU64::new(1);
                    let (pid, n) = (std::process::id(), NEXT.fetch_add(1, Relaxed));
                    let uid: Arc<str> = format!("{}-{pid:x}.{n}", short_type_name::<A>()).into();
                    if !actors.contains_key(uid.as_bytes()) {
                        break uid;
                    }
                },
            };
            let me = ActorRef::new(self.address.clone(), uid.clone());
            let cell = Arc::new(Cell {
                mailbox,
                me: me.clone(),
                remote,
                incarnation,
                task: OnceLock::new(),
                registered: AtomicBool::new(true),
                logs_slow_calls: self.debug.slow_call.is_some(),
            });
            actors.insert(UidKey(uid), cell.clone());
            (me, cell)
        };
        let registration = Registration {
            core: Arc::downgrade(self),
            uid: me.uid_arc().clone(),
            incarnation,
            lifetime: self.lifetime.child_token(),
        };
        let ctx = Context::new(
            me.clone(),
            crate::actor::handle::PoolHandle { core: self.clone() },
            registration,
        );
        let (started, start_result) = oneshot::channel();
        // The pool owns every actor task it ever started, whatever became of its registry
        // entry (a stop or destroy given up half-way): its end aborts them all. (Owned by a
        // set, not raced against the pool's token, which would cost every wake-up a poll.)
        let task = {
            let mut tasks = self.tasks.lock();
            // Ended tasks leave the set here, so it holds only the living.
            while tasks.try_join_next().is_some() {}
            tasks.spawn_on(runner::run(actor, ctx, inbox, started, mode), &self.runtime)
        };
        let _ = cell.task.set(task.clone());
        if self.lifetime.is_cancelled() {
            // The pool was dropped between registering and spawning: nobody else will abort.
            task.abort();
        }
        start_result.await.unwrap_or_else(|_| Err(ActorError::stopped(&me)))?;
        Ok(me)
    }

    /// Why `placement` fails in a pool with no neighbours: it has no sub pools and no label.
    fn nowhere_but_here(&self, placement: &Placement) -> ActorError {
        let reason = match placement {
            Placement::Address(address) => {
                format!("{address} is neither this pool nor one of its sub pools")
            }
            Placement::SubPool(index) => format!("no sub pool {index} (0 sub pools)"),
            Placement::Label(label) => format!("no pool labelled {label:?}"),
            Placement::IdleLabel(label) => format!("no idle pool labelled {label:?}"),
            Placement::Here | Placement::RandomSubPool => "no sub pools".to_owned(),
        };
        ActorError::Placement { address: self.address.to_string(), reason }
    }

    /// Forgets `uid` at once (new calls find nothing), then stops the actor after the messages
    /// it already accepted and returns its stop hook's result.
    /// In a sub pool, the main pool has forgotten the actor when this returns.
    pub(crate) async fn destroy(self: &Arc<Self>, uid: &str) -> Result<(), ActorError> {
        let cell = self.actors.write().remove(uid.as_bytes()).ok_or_else(|| self.not_found(uid))?;
        cell.unregister();
        let told = self.left(uid);
        let stopped = stop(cell).await;
        if let Some(told) = told {
            let _ = told.await;
        }
        stopped
    }

    /// Creates an actor of the type registered as `type_name`.
    pub(crate) async fn create_by_name(
        self: &Arc<Self>,
        type_name: &str,
        init: Payloads,
        uid: Option<Arc<str>>,
    ) -> Result<Arc<str>, ActorError> {
        let factory =
            self.factories.get(type_name).cloned().ok_or_else(|| ActorError::UnknownType {
                address: self.address.to_string(),
                type_name: type_name.to_owned(),
            })?;
        factory(self.clone(), init, uid).await
    }

    /// Runs `work` on the pool's runtime until it ends or the pool is dropped (then it is
    /// dropped: a responder inside answers as dropped).
    pub(crate) fn spawn_owned(&self, work: impl Future<Output = ()> + Send + 'static) {
        let lifetime = self.lifetime.clone();
        self.runtime.spawn(async move {
            tokio::select! {
                biased;
                () = lifetime.cancelled() => {}
                () = work => {}
            }
        });
    }

    /// Stops every actor after its accepted messages, running its stop hook; all at once, so
    /// one slow stop hook does not hold up the others.
    pub(crate) async fn stop_all(&self) {
        let cells: Vec<_> = self.actors.write().drain().map(|(_, cell)| cell).collect();
        let stops = cells.into_iter().map(|cell| {
            cell.unregister();
            async move {
                if let Err(error) = stop(cell).await {
                    tracing::warn!(%error, "an actor failed to stop cleanly");
                }
            }
        });
        futures_util::future::join_all(stops).await;
    }

    /// Drops every actor at once: no stop hooks; queued and running calls get `Stopped`.
    pub(crate) fn abort_all(&self) {
        self.lifetime.cancel();
        self.tasks.lock().abort_all();
        for (_, cell) in self.actors.write().drain() {
            cell.unregister();
        }
    }
}

/// Stops an actor already out of the registry: queues its stop behind the messages it accepted
/// and waits for its stop hook. Given up before the stop was queued (the mailbox was full),
/// the actor is aborted: out of the registry, nothing could ever stop it otherwise.
async fn stop(cell: Arc<dyn AnyCell>) -> Result<(), ActorError> {
    struct AbortUnlessQueued(Option<Arc<dyn AnyCell>>);
    impl Drop for AbortUnlessQueued {
        fn drop(&mut self) {
            if let Some(cell) = self.0.take() {
                cell.abort();
            }
        }
    }
    let mut guard = AbortUnlessQueued(Some(cell.clone()));
    let stopped = cell.queue_stop().await?;
    guard.0 = None;
    stopped.await
}

/// A factory for the registered type `A` made from `make`.
pub(crate) fn factory<A, I, F>(make: F, mode: Mode<A>) -> Factory
where
    A: Actor,
    I: prost::Message + Default + 'static,
    F: Fn(I) -> Result<A, Failure> + Send + Sync + 'static,
{
    let make = Arc::new(make);
    Arc::new(move |core: Arc<Core>, init: Payloads, uid: Option<Arc<str>>| {
        let make = make.clone();
        let mode = mode.clone();
        Box::pin(async move {
            let init = body::decode::<I>(init).map_err(|error| ActorError::BadMessage {
                address: core.address.to_string(),
                detail: format!("init of {}: {error}", std::any::type_name::<A>()),
            })?;
            let placeholder = ActorRef::<A>::new(core.address.clone(), "");
            let actor = match std::panic::catch_unwind(AssertUnwindSafe(|| make(init))) {
                Ok(Ok(actor)) => actor,
                Ok(Err(failure)) => return Err(ActorError::handler(&placeholder, failure)),
                Err(panic) => return Err(ActorError::panicked(&placeholder, &*panic)),
            };
            Ok(core.spawn(actor, uid, mode).await?.uid_arc().clone())
        }) as BoxFuture<'static, _>
    })
}

fn short_type_name<A>() -> &'static str {
    let full = std::any::type_name::<A>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

/// `cell` as the cell of an `A`, or the error a ref of the wrong type gets.
pub(crate) fn typed<A: Actor>(cell: Arc<dyn AnyCell>) -> Result<Arc<Cell<A>>, ActorError> {
    let wrong_type = |cell: &dyn AnyCell| ActorError::WrongType {
        address: cell.address().to_string(),
        uid: cell.uid().to_owned(),
        expected: std::any::type_name::<A>().to_owned(),
        actual: cell.actor_type().to_owned(),
    };
    if !cell.as_any().is::<Cell<A>>() {
        return Err(wrong_type(&*cell));
    }
    let error = || ActorError::Setup { address: String::new(), reason: "cell type".to_owned() };
    cell.into_any().downcast::<Cell<A>>().map_err(|_| error())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::{Actor, ActorPool, Context, Failure, Handler};

    struct Echo;

    impl Actor for Echo {}

    impl Handler<u32> for Echo {
        type Reply = u32;
        async fn handle(&mut self, n: u32, _: &mut Context<Self>) -> Result<u32, Failure> {
            Ok(n)
        }
    }

    /// A ref caches the cell it reached, and a cell holds its own ref: the cache must not keep
    /// a destroyed actor's cell (mailbox, task) alive.
    #[tokio::test]
    async fn a_destroyed_actor_frees_its_cell_even_after_calls_through_its_own_ref() {
        let pool = ActorPool::start("inproc://core-cell-cycle".parse().unwrap()).await.unwrap();
        let echo = pool.create(Echo).await.unwrap();
        // The ref returned shares its target with the cell's own ref; a call caches the cell.
        assert_eq!(echo.call(7u32).await.unwrap(), 7);
        let cell = Arc::downgrade(&pool.handle().core.cell(echo.uid()).unwrap());
        crate::destroy_actor(&echo).await.unwrap();
        drop(echo);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while cell.upgrade().is_some() {
            assert!(tokio::time::Instant::now() < deadline, "the destroyed actor's cell lives on");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
