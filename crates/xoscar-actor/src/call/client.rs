//! The caller side of this process: one pool of connections and one router, shared by every
//! actor pool and every caller in the process (as xoscar has one context per process).

use std::borrow::Cow;
use std::future::IntoFuture;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use xoscar_pool::{Message, Pool, PoolConfig};
use xoscar_router::{Route, Router};
use xoscar_transport::Address;
use xoscar_wire::Payloads;

use super::pipeline::{Accepted, Reply, Wait};
use crate::actor::cell::{BoxFuture, Cell};
use crate::actor::core::{Core, typed};
use crate::pb::{self, request::Kind};
use crate::wire::header::{self, Answer};
use crate::{Actor, ActorError, ActorRef, Handler, Placement};

pub(crate) struct Client {
    pub(crate) pool: Pool,
    pub(crate) router: Router<Weak<Core>>,
}

static CLIENT: OnceLock<Result<Client, ActorError>> = OnceLock::new();

impl Client {
    fn new(config: PoolConfig) -> Result<Client, ActorError> {
        let pool = Pool::new(config).map_err(|error| ActorError::Setup {
            address: String::new(),
            reason: format!("caller configuration: {error}"),
        })?;
        Ok(Client { pool, router: Router::new() })
    }
}

/// This process's caller: made with the default configuration at first use, unless
/// [`configure`] came first. Inline: every call reaches it, and once made it is one load.
#[inline]
pub(crate) fn client() -> Result<&'static Client, ActorError> {
    match CLIENT.get() {
        Some(Ok(client)) => Ok(client),
        _ => first_client(),
    }
}

#[cold]
fn first_client() -> Result<&'static Client, ActorError> {
    CLIENT.get_or_init(|| Client::new(PoolConfig::default())).as_ref().map_err(Clone::clone)
}

/// Sets the configuration of this process's caller pool (idle timeout, heartbeat, call
/// timeout, ...; environment variables `XOSCAR_*` apply on top). Call it before the first
/// actor pool, call or ref use; afterwards it is an error. Without it, the caller uses
/// [`PoolConfig::default`] with the environment applied.
pub fn configure(config: PoolConfig) -> Result<(), ActorError> {
    CLIENT.set(Ok(Client::new(config)?)).map_err(|_| ActorError::Setup {
        address: String::new(),
        reason: "the caller is configured already (or already in use)".to_owned(),
    })
}

/// This process's caller pool: its settings and counters ([`Pool::stats`]: open
/// connections, reaps, dead peers).
pub fn caller() -> Result<&'static Pool, ActorError> {
    Ok(&client()?.pool)
}

/// Sends calls for actors at `external` to `internal` from now on, e.g. a pool's TCP address
/// to its Unix socket on this host ([`crate::ActorPoolBuilder::internal_address`]). Refs keep
/// the external address. A pool of this process at `external` still takes precedence.
pub fn map_address(external: Address, internal: Address) -> Result<(), ActorError> {
    client()?.router.map(external, internal);
    Ok(())
}

/// Removes a mapping made by [`map_address`].
pub fn unmap_address(external: &Address) -> Result<(), ActorError> {
    client()?.router.unmap(external);
    Ok(())
}

/// Where an actor is reached: its cell in this process, or an endpoint to dial.
pub(crate) enum Reach<'a, A> {
    Local(Arc<Cell<A>>),
    Remote(&'static Client, Cow<'a, Address>),
}

impl<A: Actor> ActorRef<A> {
    /// The actor's cell if it lives in this process (from the ref's cache when still live),
    /// else the endpoint to dial.
    pub(crate) fn reach(&self) -> Result<Reach<'_, A>, ActorError> {
        // The router's answer when this ref last asked, while its tables have not changed
        // since: an unmapped address that no pool of this process serves. (A ref that never
        // went to another process pays one load for the look.)
        if let Some(noted) = self.noted_remote_version() {
            let client = client()?;
            if client.router.version() == noted {
                return Ok(Reach::Remote(client, Cow::Borrowed(self.address())));
            }
        }
        if let Some(cell) = self.cached_cell() {
            return Ok(Reach::Local(cell));
        }
        let client = client()?;
        let (version, route) = client.router.resolve_versioned(self.address());
        match placed(route, self.address()) {
            Place::Local(core) => match core.cell(self.uid()) {
                Ok(cell) => {
                    let cell = typed::<A>(cell)?;
                    self.cache_cell(&cell);
                    Ok(Reach::Local(cell))
                }
                // A main pool of this process: the actor may live in one of its sub pools.
                // Where it was noted, straight there; else through the main pool's own
                // listener, which asks its sub pools.
                Err(error) => {
                    let Some(neighbours) = core.neighbours().filter(|n| n.any()) else {
                        return Err(error);
                    };
                    let at = neighbours.noted(self.uid()).unwrap_or_else(|| core.address.clone());
                    let endpoint = match client.router.resolve(&at) {
                        Route::Remote(endpoint) => endpoint.into_owned(),
                        Route::Local(_) => at,
                    };
                    Ok(Reach::Remote(client, Cow::Owned(endpoint)))
                }
            },
            Place::Remote(Cow::Borrowed(endpoint)) => {
                self.note_remote_at(version);
                Ok(Reach::Remote(client, Cow::Borrowed(endpoint)))
            }
            Place::Remote(endpoint) => Ok(Reach::Remote(client, endpoint)),
        }
    }
}

/// Where `address` is served: a live pool of this process, or an endpoint to dial.
pub(crate) enum Place<'a> {
    Local(Arc<Core>),
    Remote(Cow<'a, Address>),
}

pub(crate) fn place(address: &Address) -> Result<(&'static Client, Place<'_>), ActorError> {
    let client = client()?;
    Ok((client, placed(client.router.resolve(address), address)))
}

/// Where `address` is served, given its `route`.
fn placed<'a>(route: Route<'a, Weak<Core>>, address: &'a Address) -> Place<'a> {
    match route {
        // A pool dropped a moment ago is still in the table: nobody is there.
        Route::Local(core) => match core.upgrade() {
            Some(core) => Place::Local(core),
            None => Place::Remote(Cow::Borrowed(address)),
        },
        Route::Remote(endpoint) => Place::Remote(endpoint),
    }
}

impl<A: Actor> ActorRef<A> {
    /// Sends `message` and waits for the actor's reply. In this process the value is handed
    /// over as is; to another process it is encoded (it must be one of the actor's
    /// [`Actor::remote_messages`], or this fails with [`ActorError::NotRemote`] before
    /// sending).
    ///
    /// Dropping the future cancels the call, in this process and remotely: a message still in
    /// the actor's mailbox is skipped, and a handler still waiting is dropped where it waits
    /// (as any cancelled Rust future is; the actor then goes on with its next message).
    // Not an `async fn`: the pipeline's future is returned as it is, so a call is one future
    // deep, as before the pipeline (an extra level cost 5 % of a local call's instructions).
    pub fn call<M: Send + 'static>(
        &self,
        message: M,
    ) -> impl Future<Output = Result<A::Reply, ActorError>> + Send + '_
    where
        A: Handler<M>,
    {
        self.request::<M, Reply>(message, Wait::Configured)
    }

    /// [`ActorRef::call`] that gives up after `timeout` with [`ActorError::CallTimedOut`],
    /// even if the actor's process never answers. The deadline travels with the message: an
    /// actor that only gets to it after the deadline skips it, in this process or another.
    /// A handler still waiting when the deadline passes is dropped, as on a cancel.
    pub async fn call_with_timeout<M: Send + 'static>(
        &self,
        message: M,
        timeout: Duration,
    ) -> Result<A::Reply, ActorError>
    where
        A: Handler<M>,
    {
        self.request::<M, Reply>(message, Wait::Timeout(timeout)).await
    }

    /// Sends `message` without waiting for a reply: returns once the actor's pool accepted it
    /// into the actor's mailbox (so an unknown uid is still an error here). The handler's
    /// own error, if any, is logged by the actor's pool.
    pub fn tell<M: Send + 'static>(
        &self,
        message: M,
    ) -> impl Future<Output = Result<(), ActorError>> + Send + '_
    where
        A: Handler<M>,
    {
        self.request::<M, Accepted>(message, Wait::Configured)
    }
}

/// Whether the actor is alive in its pool.
pub async fn has_actor<A>(actor: &ActorRef<A>) -> Result<bool, ActorError> {
    match place(actor.address())? {
        (_, Place::Local(core)) if core.has(actor.uid()) => Ok(true),
        (_, Place::Local(core)) => Ok(core.locate_elsewhere(actor.uid()).await.is_some()),
        (client, Place::Remote(endpoint)) => {
            let has = Kind::Has(pb::Target { uid: actor.uid().to_owned() });
            match manage(client, &endpoint, has, Payloads::new()).await? {
                Answer::Done(done) => Ok(done.present),
                Answer::Body(_) => Err(no_detail(&endpoint)),
            }
        }
    }
}

/// Destroys the actor: its uid is forgotten at once (new calls get [`ActorError::NotFound`]),
/// the messages it accepted before are handled, then its stop hook runs and its result is
/// returned. A second destroy is [`ActorError::NotFound`]; the uid may then be created again.
pub async fn destroy_actor<A>(actor: &ActorRef<A>) -> Result<(), ActorError> {
    match place(actor.address())? {
        (_, Place::Local(core)) if !core.has(actor.uid()) => {
            let elsewhere = match core.neighbours() {
                Some(neighbours) => neighbours.locate(actor.uid()).await.map(|at| (neighbours, at)),
                None => None,
            };
            match elsewhere {
                Some((neighbours, at)) => neighbours.destroy_at(&at, actor.uid()).await,
                None => Err(core.not_found(actor.uid())),
            }
        }
        (_, Place::Local(core)) => core.destroy(actor.uid()).await,
        (client, Place::Remote(endpoint)) => {
            let destroy = Kind::Destroy(pb::Target { uid: actor.uid().to_owned() });
            manage(client, &endpoint, destroy, Payloads::new()).await.map(drop)
        }
    }
}

/// A reference to the actor `uid` found through the pool at `address`: in that pool, or, for
/// a main pool, in the sub pool holding it (xoscar's `actor_ref`). The ref carries the address
/// of the pool the actor lives in, so calls go straight there. [`ActorError::NotFound`] if no
/// pool holds it.
pub async fn actor_ref<A>(
    address: &Address,
    uid: impl Into<Arc<str>>,
) -> Result<ActorRef<A>, ActorError> {
    let uid: Arc<str> = uid.into();
    match place(address)? {
        (_, Place::Local(core)) if core.has(&uid) => Ok(ActorRef::new(address.clone(), uid)),
        (_, Place::Local(core)) => match core.locate_elsewhere(&uid).await {
            Some(at) => Ok(ActorRef::new(at, uid)),
            None => Err(core.not_found(&uid)),
        },
        (client, Place::Remote(endpoint)) => {
            let has = Kind::Has(pb::Target { uid: uid.to_string() });
            match manage(client, &endpoint, has, Payloads::new()).await? {
                Answer::Done(done) if !done.present => {
                    Err(ActorError::NotFound { address: address.to_string(), uid: uid.to_string() })
                }
                Answer::Done(done) if done.address.is_empty() => {
                    Ok(ActorRef::new(address.clone(), uid))
                }
                Answer::Done(done) => {
                    let at = done.address.parse().map_err(|error| ActorError::BadReply {
                        address: endpoint.to_string(),
                        detail: format!("the address of an actor: {error}"),
                    })?;
                    Ok(ActorRef::new(at, uid))
                }
                Answer::Body(_) => Err(no_detail(&endpoint)),
            }
        }
    }
}

/// Sends a create, has or destroy to the pool at `endpoint`; its answer.
async fn manage(
    client: &Client,
    endpoint: &Address,
    kind: Kind,
    body: Payloads,
) -> Result<Answer, ActorError> {
    let request = Message::new(header::request(kind), body);
    header::answer(client.pool.call(endpoint, request).await?, endpoint)
}

/// Creates an actor of `type_name` through the pool at `address` (this process's or another's),
/// placed as `placement` says; its uid and the address of the pool it landed in.
pub(crate) async fn create_at(
    address: &Address,
    type_name: &str,
    init: Payloads,
    uid: Option<Arc<str>>,
    placement: &Placement,
) -> Result<(Arc<str>, Address), ActorError> {
    match place(address)? {
        (_, Place::Local(core)) => core.create_placed(type_name, init, uid, placement).await,
        (client, Place::Remote(endpoint)) => {
            let uid = uid.as_deref().unwrap_or_default().to_owned();
            let placement = placement.to_wire();
            let create =
                Kind::Create(pb::Create { type_name: type_name.to_owned(), uid, placement });
            match manage(client, &endpoint, create, init).await? {
                Answer::Done(done) if done.address.is_empty() => {
                    Ok((done.uid.into(), address.clone()))
                }
                Answer::Done(done) => {
                    let at = done.address.parse().map_err(|error| ActorError::BadReply {
                        address: endpoint.to_string(),
                        detail: format!("the address of a created actor: {error}"),
                    })?;
                    Ok((done.uid.into(), at))
                }
                Answer::Body(_) => Err(no_detail(&endpoint)),
            }
        }
    }
}

fn no_detail(endpoint: &Address) -> ActorError {
    ActorError::BadReply {
        address: endpoint.to_string(),
        detail: "an answer with no detail".to_owned(),
    }
}

/// Creates an actor of the type registered as `type_name` in the pool at `address` (this
/// process's or another's), from the init message its factory takes. Await it; `.uid(..)`
/// picks the uid (default: one the pool generates).
///
/// ```no_run
/// # async fn demo(address: xoscar_transport::Address) -> Result<(), xoscar_actor::ActorError> {
/// # use xoscar_actor::{Actor, create_actor};
/// # struct Counter;
/// # impl Actor for Counter {}
/// #[derive(Clone, PartialEq, prost::Message)]
/// struct CounterInit {
///     #[prost(uint64, tag = "1")]
///     start: u64,
/// }
/// let counter = create_actor::<Counter>(&address, "Counter", &CounterInit { start: 5 })
///     .uid("counter-1")
///     .await?;
/// # Ok(()) }
/// ```
pub fn create_actor<A: Actor>(
    address: &Address,
    type_name: &str,
    init: &(impl prost::Message + 'static),
) -> CreateRemoteActor<A> {
    CreateRemoteActor {
        address: address.clone(),
        type_name: type_name.to_owned(),
        init: crate::wire::body::encode(init),
        uid: None,
        placement: Placement::Here,
        actor: std::marker::PhantomData,
    }
}

/// A pending [`create_actor`]: set options, then await it.
#[must_use = "a create does nothing until awaited"]
pub struct CreateRemoteActor<A> {
    address: Address,
    type_name: String,
    init: Payloads,
    uid: Option<Arc<str>>,
    placement: Placement,
    actor: std::marker::PhantomData<fn() -> A>,
}

impl<A> CreateRemoteActor<A> {
    /// Where the pool at the address (a main pool) puts the actor among itself and its sub
    /// pools; the ref returned carries the address of the pool it landed in. Default:
    /// [`Placement::Here`].
    pub fn placement(mut self, placement: Placement) -> Self {
        self.placement = placement;
        self
    }

    /// The uid to create the actor under. Default: one the pool generates. A uid in use is
    /// [`ActorError::AlreadyExists`].
    pub fn uid(mut self, uid: impl Into<Arc<str>>) -> Self {
        self.uid = Some(uid.into());
        self
    }
}

impl<A: Actor> IntoFuture for CreateRemoteActor<A> {
    type Output = Result<ActorRef<A>, ActorError>;
    type IntoFuture = BoxFuture<'static, Self::Output>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let CreateRemoteActor { address, type_name, init, uid, placement, .. } = self;
            let (uid, address) = create_at(&address, &type_name, init, uid, &placement).await?;
            Ok(ActorRef::new(address, uid))
        })
    }
}
