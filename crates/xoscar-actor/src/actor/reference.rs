//! [`ActorRef`]: `(address, uid)`, typed by the actor, usable as a prost field.

use std::any::{Any, TypeId};
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock, Weak};

use bytes::{Buf, BufMut, Bytes};
use parking_lot::Mutex;
use prost::encoding::{
    DecodeContext, WireType, encode_key, encode_varint, encoded_len_varint, key_len, skip_field,
    string,
};
use xoscar_pool::RecentConnection;
use xoscar_transport::Address;

use crate::actor::cell::Cell;
use crate::error::Failure;
use crate::wire::codec::Codec;
use crate::{Actor, ActorError};

/// A reference to an actor: the address of its pool and its uid. Typed by the actor `A` so
/// that [`ActorRef::call`] knows the reply type; [`ActorRef::cast`] retypes it.
///
/// - Cheap to clone (one reference count); comparable and hashable by `(address, uid)`.
/// - Resolved on every call: a ref to a destroyed uid reaches the actor created later under
///   the same uid.
/// - A prost message itself (fields `address = 1`, `uid = 2`, both strings), so it travels
///   inside messages as a field: `#[prost(message, optional, tag = "1")] reply_to:
///   Option<ActorRef<Caller>>`. An address that does not parse fails the decode.
pub struct ActorRef<A> {
    inner: Arc<Target>,
    actor: PhantomData<fn() -> A>,
}

struct Target {
    address: Address,
    uid: Arc<str>,
    /// The actor this ref last reached in this process, so that the next call skips the router
    /// and the pool's registry. Only trusted while the cell is live (not destroyed, mailbox
    /// open); shared by every clone of the ref. Weak: a cell holds its own ref, so a strong
    /// cache would keep a destroyed actor's cell, mailbox and task alive forever.
    /// The first cell cached is read without a lock: every clone of a ref shares this, so
    /// callers on several threads would otherwise contend for one lock on every call. A ref
    /// that outlives its actor (destroyed, then made again under the same uid) caches the
    /// new cell in `local`, behind the lock; the first one's allocation (not the cell, which
    /// is dropped with its actor) stays until the ref and its clones are gone.
    first_local: OnceLock<Weak<dyn Any + Send + Sync>>,
    local: Mutex<Option<Weak<dyn Any + Send + Sync>>>,
    /// One more than the router version at which this ref's address was last found to be
    /// neither a pool of this process nor mapped (0: not found so yet). While the router's
    /// version is still that, a call goes to the address without asking the router: two
    /// atomic loads (this and the router's version) instead of the cell cache's lock, the
    /// router's lock and two lookups.
    remote_at: AtomicU64,
    /// How this ref sends each message type across processes (a call or a tell): the
    /// actor type's codec and the request header. A header names only the uid and the
    /// message, so it is the same every time; looking both up here costs less than the actor
    /// type's table and a fresh encode (and allocation) per call. Bounded: at most a call and
    /// a tell per remote message, for each actor type the ref is used as (`cast`).
    /// The first route made is read without the lock (most refs send one kind of message);
    /// the others are in `routes`.
    first_route: OnceLock<Route>,
    routes: Mutex<Vec<Route>>,
    /// The connection of this ref's last call to another process, so that the next call to
    /// the same endpoint skips the pool's lookups (weak: it keeps no connection open).
    recent: RecentConnection,
}

/// How a ref sends one message type across processes, typed as one actor type (a ref cast to
/// another type shares its target, and the same message may travel under another name).
struct Route {
    actor: TypeId,
    message: TypeId,
    tell: bool,
    codec: Codec,
    header: Bytes,
}

impl Clone for Target {
    fn clone(&self) -> Self {
        let (address, uid) = (self.address.clone(), self.uid.clone());
        Target {
            address,
            uid,
            first_local: OnceLock::new(),
            local: Mutex::default(),
            remote_at: AtomicU64::new(0),
            first_route: OnceLock::new(),
            routes: Mutex::default(),
            recent: RecentConnection::default(),
        }
    }
}

impl PartialEq for Target {
    fn eq(&self, other: &Self) -> bool {
        self.uid == other.uid && self.address == other.address
    }
}

impl Eq for Target {}

impl Hash for Target {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.address.hash(state);
        self.uid.hash(state);
    }
}

impl<A> ActorRef<A> {
    /// A reference to the actor `uid` in the pool at `address`. Nothing is checked until it is
    /// used.
    pub fn new(address: Address, uid: impl Into<Arc<str>>) -> Self {
        let target = Target {
            address,
            uid: uid.into(),
            first_local: OnceLock::new(),
            local: Mutex::default(),
            remote_at: AtomicU64::new(0),
            first_route: OnceLock::new(),
            routes: Mutex::default(),
            recent: RecentConnection::default(),
        };
        ActorRef { inner: Arc::new(target), actor: PhantomData }
    }

    /// The address of the actor's pool.
    pub fn address(&self) -> &Address {
        &self.inner.address
    }

    /// The actor's uid.
    pub fn uid(&self) -> &str {
        &self.inner.uid
    }

    pub(crate) fn uid_arc(&self) -> &Arc<str> {
        &self.inner.uid
    }

    /// The actor this ref reached last in this process, if it is an `A` and still live.
    pub(crate) fn cached_cell(&self) -> Option<Arc<Cell<A>>>
    where
        A: Actor,
    {
        let live = |cached: Arc<dyn Any + Send + Sync>| {
            cached.downcast::<Cell<A>>().ok().filter(|cell| cell.is_live())
        };
        if let Some(cell) = self.inner.first_local.get().and_then(Weak::upgrade).and_then(live) {
            return Some(cell);
        }
        let cached = self.inner.local.lock().as_ref()?.upgrade()?;
        live(cached)
    }

    pub(crate) fn cache_cell(&self, cell: &Arc<Cell<A>>)
    where
        A: Actor,
    {
        let cell: Arc<dyn Any + Send + Sync> = cell.clone();
        if let Err(weak) = self.inner.first_local.set(Arc::downgrade(&cell)) {
            *self.inner.local.lock() = Some(weak);
        }
    }

    /// The router version at which this ref's address was last found remote and unmapped
    /// (see [`ActorRef::note_remote_at`]), if it was.
    pub(crate) fn noted_remote_version(&self) -> Option<u64> {
        self.inner.remote_at.load(Relaxed).checked_sub(1)
    }

    /// Notes that the router, at `version`, sent this ref's address to itself, remote.
    // Relaxed: the number publishes nothing; it is only compared with the router's version.
    pub(crate) fn note_remote_at(&self, version: u64) {
        self.inner.remote_at.store(version.wrapping_add(1), Relaxed);
    }

    /// The connection this ref's last call to another process went through (shared by its
    /// clones).
    pub(crate) fn recent_connection(&self) -> &RecentConnection {
        &self.inner.recent
    }

    /// The codec and request header of a call or tell (`tell`) of `M` to this ref's actor:
    /// `make`s them the first time, then gives the same (an error is not kept).
    pub(crate) fn route<M: 'static>(
        &self,
        tell: bool,
        make: impl FnOnce() -> Result<(Codec, Bytes), ActorError>,
    ) -> Result<(Codec, Bytes), ActorError>
    where
        A: 'static,
    {
        let (actor, message) = (TypeId::of::<A>(), TypeId::of::<M>());
        let same = |r: &&Route| r.actor == actor && r.message == message && r.tell == tell;
        let first = || self.inner.first_route.get().filter(same);
        if let Some(route) = first() {
            return Ok((route.codec, route.header.clone()));
        }
        let mut routes = self.inner.routes.lock();
        // Looked at again under the lock, where routes are made: each is made once.
        if let Some(route) = first().or_else(|| routes.iter().find(same)) {
            return Ok((route.codec, route.header.clone()));
        }
        let (codec, header) = make()?;
        let route = Route { actor, message, tell, codec, header: header.clone() };
        if let Err(route) = self.inner.first_route.set(route) {
            routes.push(route);
        }
        Ok((codec, header))
    }

    /// The same reference typed as another actor type (for example after decoding it with a
    /// placeholder type). A call through a wrongly typed ref fails with
    /// [`crate::ActorError::WrongType`] in-process, or with an error from the remote pool.
    pub fn cast<B>(&self) -> ActorRef<B> {
        ActorRef { inner: self.inner.clone(), actor: PhantomData }
    }
}

impl<A> Clone for ActorRef<A> {
    fn clone(&self) -> Self {
        ActorRef { inner: self.inner.clone(), actor: PhantomData }
    }
}

impl<A> PartialEq for ActorRef<A> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner) || self.inner == other.inner
    }
}

impl<A> Eq for ActorRef<A> {}

impl<A> Hash for ActorRef<A> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.hash(state);
    }
}

impl<A> fmt::Debug for ActorRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActorRef")
            .field("address", &self.inner.address.to_string())
            .field("uid", &self.inner.uid)
            .finish()
    }
}

impl<A> fmt::Display for ActorRef<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.inner.uid, self.inner.address)
    }
}

impl<A> Default for ActorRef<A> {
    /// An empty reference (`inproc://` with no name and an empty uid): what prost decodes
    /// before the fields arrive. Calls through it fail to connect.
    fn default() -> Self {
        ActorRef::new(Address::Inproc(String::new()), "")
    }
}

const ADDRESS_TAG: u32 = 1;
const UID_TAG: u32 = 2;

impl<A> prost::Message for ActorRef<A> {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        put_text(ADDRESS_TAG, &self.inner.address.to_string(), buf);
        put_text(UID_TAG, &self.inner.uid, buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        let target = Arc::make_mut(&mut self.inner);
        match tag {
            ADDRESS_TAG => {
                let mut text = String::new();
                string::merge(wire_type, &mut text, buf, ctx)?;
                target.address =
                    text.parse().map_err(|error: xoscar_transport::AddressError| {
                        // prost offers no other public constructor of a custom decode error.
                        #[allow(deprecated)]
                        prost::DecodeError::new(format!("ActorRef.address: {error}"))
                    })?;
                Ok(())
            }
            UID_TAG => {
                let mut text = String::new();
                string::merge(wire_type, &mut text, buf, ctx)?;
                target.uid = text.into();
                Ok(())
            }
            _ => skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        text_len(ADDRESS_TAG, &self.inner.address.to_string()) + text_len(UID_TAG, &self.inner.uid)
    }

    fn clear(&mut self) {
        *self = ActorRef::default();
    }
}

/// Writes a proto3 string field (omitted when empty, as prost's derive does).
fn put_text(tag: u32, text: &str, buf: &mut impl BufMut) {
    if !text.is_empty() {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(text.len() as u64, buf);
        buf.put_slice(text.as_bytes());
    }
}

fn text_len(tag: u32, text: &str) -> usize {
    if text.is_empty() {
        0
    } else {
        key_len(tag) + encoded_len_varint(text.len() as u64) + text.len()
    }
}

/// Errors located at an actor, as its own pool reports them.
impl ActorError {
    /// A handler's (or hook's) failure, located at the actor `me`.
    pub(crate) fn handler<A>(me: &ActorRef<A>, failure: Failure) -> Self {
        ActorError::Handler {
            address: me.address().to_string(),
            pid: std::process::id(),
            actor_type: std::any::type_name::<A>().to_owned(),
            uid: me.uid().to_owned(),
            message: failure.message(),
            source: failure.into_source(),
        }
    }

    /// A handler's (or hook's) panic, located at the actor `me`.
    pub(crate) fn panicked<A>(me: &ActorRef<A>, panic: &(dyn std::any::Any + Send)) -> Self {
        ActorError::HandlerPanicked {
            address: me.address().to_string(),
            pid: std::process::id(),
            actor_type: std::any::type_name::<A>().to_owned(),
            uid: me.uid().to_owned(),
            message: crate::error::panic_message(panic),
        }
    }

    pub(crate) fn cancelled<A>(me: &ActorRef<A>) -> Self {
        ActorError::Cancelled { address: me.address().to_string(), uid: me.uid().to_owned() }
    }

    pub(crate) fn stopped<A>(me: &ActorRef<A>) -> Self {
        ActorError::Stopped { address: me.address().to_string(), uid: me.uid().to_owned() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_is_made_once_per_message_type_and_kind() {
        let actor = ActorRef::<()>::new("inproc://routes".parse().unwrap(), "a");
        let made = std::cell::Cell::new(0);
        let codec =
            |name| Codec { name, batch: false, encode: |_| None, decode_reply: |_, _, _| Ok(()) };
        let route = |tell, name: &'static str| {
            made.set(made.get() + 1);
            Ok((codec(name), Bytes::from(format!("{name} {tell}"))))
        };
        let (_, first) = actor.route::<u64>(false, || route(false, "Ping")).unwrap();
        let (again_codec, again) = actor.route::<u64>(false, || unreachable!("kept")).unwrap();
        assert_eq!(again.as_ptr(), first.as_ptr(), "the same bytes, not encoded again");
        assert_eq!(again_codec.name, "Ping");
        assert_eq!(actor.route::<u64>(true, || route(true, "Ping")).unwrap().1, "Ping true");
        assert_eq!(actor.route::<u32>(false, || route(false, "Pong")).unwrap().1, "Pong false");
        assert_eq!(made.get(), 3);
        // An error is not kept: the next call tries again.
        let failed = actor.route::<i8>(false, || {
            Err(ActorError::Stopped { address: String::new(), uid: String::new() })
        });
        assert!(failed.is_err());
        assert!(actor.route::<i8>(false, || route(false, "Late")).is_ok());
        // A clone shares what its original made; the same ref cast to another actor type
        // makes its own (the message may have another name there).
        actor.clone().route::<u64>(false, || unreachable!("kept")).unwrap();
        let cast = actor.cast::<u8>().route::<u64>(false, || route(false, "Other")).unwrap();
        assert_eq!(cast.1, "Other false");
    }
}
