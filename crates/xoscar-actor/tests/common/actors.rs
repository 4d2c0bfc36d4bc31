//! The actors the tests use, each a small copy of a behaviour xoscar's own tests exercise.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::StreamExt as _;
use tokio::sync::watch;
use xoscar_actor::{
    Actor, ActorPoolBuilder, ActorRef, BufferRef, Context, Failure, Handler, RemoteMessages,
    SharedBuffer, Streaming, create_actor,
};
use xoscar_transport::Address;

// ---- messages -------------------------------------------------------------------------------

#[derive(Clone, PartialEq, prost::Message)]
pub struct Add {
    #[prost(int64, tag = "1")]
    pub n: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Total {
    #[prost(int64, tag = "1")]
    pub value: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Get {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Fail {
    #[prost(string, tag = "1")]
    pub reason: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Boom {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CounterInit {
    #[prost(int64, tag = "1")]
    pub start: i64,
    #[prost(bool, tag = "2")]
    pub fail_start: bool,
    #[prost(bool, tag = "3")]
    pub fail_stop: bool,
}

/// A message only callers in the actor's own process can send: a closure, no prost message.
pub struct LocalOnly(pub Box<dyn FnOnce() -> i64 + Send>);

// ---- Counter ---------------------------------------------------------------------------------

/// Adds numbers; fails or panics on request; hooks that fail when asked.
pub struct Counter {
    pub total: i64,
    pub fail_start: bool,
    pub fail_stop: bool,
}

impl Counter {
    pub fn new(total: i64) -> Self {
        Counter { total, fail_start: false, fail_stop: false }
    }
}

impl Actor for Counter {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages
            .message::<Add>("Add")
            .message::<Get>("Get")
            .message::<Fail>("Fail")
            .message::<Boom>("Boom")
            .message::<bytes::Bytes>("Echo");
    }

    async fn on_start(&mut self, _ctx: &mut Context<Self>) -> Result<(), Failure> {
        if self.fail_start { Err(Failure::msg("refusing to start")) } else { Ok(()) }
    }

    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> Result<(), Failure> {
        if self.fail_stop { Err(Failure::msg("refusing to stop quietly")) } else { Ok(()) }
    }
}

impl Handler<Add> for Counter {
    type Reply = Total;
    async fn handle(&mut self, add: Add, _ctx: &mut Context<Self>) -> Result<Total, Failure> {
        self.total += add.n;
        Ok(Total { value: self.total })
    }
}

impl Handler<Get> for Counter {
    type Reply = Total;
    async fn handle(&mut self, _: Get, _ctx: &mut Context<Self>) -> Result<Total, Failure> {
        Ok(Total { value: self.total })
    }
}

impl Handler<Fail> for Counter {
    type Reply = Empty;
    async fn handle(&mut self, fail: Fail, _ctx: &mut Context<Self>) -> Result<Empty, Failure> {
        Err(std::io::Error::other(fail.reason).into())
    }
}

impl Handler<Boom> for Counter {
    type Reply = Empty;
    async fn handle(&mut self, _: Boom, _ctx: &mut Context<Self>) -> Result<Empty, Failure> {
        panic!("counter exploded")
    }
}

/// Echoes a buffer, reversed, so that an echo is not mistaken for the request.
impl Handler<bytes::Bytes> for Counter {
    type Reply = bytes::Bytes;
    async fn handle(
        &mut self,
        b: bytes::Bytes,
        _: &mut Context<Self>,
    ) -> Result<bytes::Bytes, Failure> {
        Ok(b.iter().rev().copied().collect::<Vec<u8>>().into())
    }
}

impl Handler<LocalOnly> for Counter {
    type Reply = i64;
    async fn handle(&mut self, m: LocalOnly, _ctx: &mut Context<Self>) -> Result<i64, Failure> {
        self.total += (m.0)();
        Ok(self.total)
    }
}

// ---- Relay: calls other actors, creates actors, carries refs --------------------------------

/// Calls the counter named in the message and returns its answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Forward {
    #[prost(message, optional, tag = "1")]
    pub target: Option<ActorRef<Counter>>,
    #[prost(int64, tag = "2")]
    pub n: i64,
}

/// Makes the counter named in the message fail, and fails with its error.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ForwardFail {
    #[prost(message, optional, tag = "1")]
    pub target: Option<ActorRef<Counter>>,
    #[prost(string, tag = "2")]
    pub reason: String,
}

/// Creates a counter: in the relay's own pool from a value when `address` is empty, else by
/// type name in the pool at `address`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Spawn {
    #[prost(string, tag = "1")]
    pub uid: String,
    #[prost(string, tag = "2")]
    pub address: String,
    #[prost(int64, tag = "3")]
    pub start: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Spawned {
    #[prost(message, optional, tag = "1")]
    pub target: Option<ActorRef<Counter>>,
}

#[derive(Default)]
pub struct Relay;

impl Actor for Relay {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages
            .message::<Forward>("Forward")
            .message::<ForwardFail>("ForwardFail")
            .message::<Spawn>("Spawn");
    }
}

fn target(target: Option<ActorRef<Counter>>) -> Result<ActorRef<Counter>, Failure> {
    target.ok_or_else(|| Failure::msg("no target"))
}

impl Handler<Forward> for Relay {
    type Reply = Total;
    async fn handle(&mut self, m: Forward, _ctx: &mut Context<Self>) -> Result<Total, Failure> {
        Ok(target(m.target)?.call(Add { n: m.n }).await?)
    }
}

impl Handler<ForwardFail> for Relay {
    type Reply = Empty;
    async fn handle(&mut self, m: ForwardFail, _: &mut Context<Self>) -> Result<Empty, Failure> {
        Ok(target(m.target)?.call(Fail { reason: m.reason }).await?)
    }
}

impl Handler<Spawn> for Relay {
    type Reply = Spawned;
    async fn handle(&mut self, m: Spawn, ctx: &mut Context<Self>) -> Result<Spawned, Failure> {
        let created = if m.address.is_empty() {
            ctx.pool().create(Counter::new(m.start)).uid(m.uid).await?
        } else {
            let address: Address = m.address.parse()?;
            let init = CounterInit { start: m.start, ..Default::default() };
            create_actor::<Counter>(&address, "Counter", &init).uid(m.uid).await?
        };
        Ok(Spawned { target: Some(created) })
    }
}

// ---- Peer: A → B → A call chains -------------------------------------------------------------

/// Bounces between two peers `hops` times; each hop hands its reply to `reply_later`, so the
/// peer is free to take the call that comes back.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Bounce {
    #[prost(uint32, tag = "1")]
    pub hops: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Hops {
    #[prost(uint32, tag = "1")]
    pub hops: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SetPeer {
    #[prost(message, optional, tag = "1")]
    pub peer: Option<ActorRef<Peer>>,
}

#[derive(Default)]
pub struct Peer {
    pub peer: Option<ActorRef<Peer>>,
}

impl Actor for Peer {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Bounce>("Bounce").message::<SetPeer>("SetPeer");
    }
}

impl Handler<SetPeer> for Peer {
    type Reply = Empty;
    async fn handle(&mut self, m: SetPeer, _: &mut Context<Self>) -> Result<Empty, Failure> {
        self.peer = m.peer;
        Ok(Empty {})
    }
}

impl Handler<Bounce> for Peer {
    type Reply = Hops;
    async fn handle(&mut self, m: Bounce, ctx: &mut Context<Self>) -> Result<Hops, Failure> {
        if m.hops == 0 {
            return Ok(Hops { hops: 0 });
        }
        let peer = self.peer.clone().ok_or_else(|| Failure::msg("no peer"))?;
        ctx.reply_later(async move {
            let back = peer.call(Bounce { hops: m.hops - 1 }).await?;
            Ok(Hops { hops: back.hops + 1 })
        })
    }
}

// ---- Hooked: lifecycle hooks that call actors ------------------------------------------------

#[derive(Clone, PartialEq, prost::Message)]
pub struct HookedInit {
    #[prost(message, optional, tag = "1")]
    pub log: Option<ActorRef<Counter>>,
}

/// Its start hook adds 1 to `log` and tells itself `Add { n: 10 }`; its stop hook adds 100 to
/// `log`.
pub struct Hooked {
    pub log: ActorRef<Counter>,
    pub total: i64,
}

impl Actor for Hooked {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Get>("Get").message::<Add>("Add");
    }

    async fn on_start(&mut self, ctx: &mut Context<Self>) -> Result<(), Failure> {
        self.log.call(Add { n: 1 }).await?;
        ctx.actor_ref().tell(Add { n: 10 }).await?;
        Ok(())
    }

    async fn on_stop(&mut self, _ctx: &mut Context<Self>) -> Result<(), Failure> {
        self.log.call(Add { n: 100 }).await?;
        Ok(())
    }
}

impl Handler<Add> for Hooked {
    type Reply = Total;
    async fn handle(&mut self, add: Add, _: &mut Context<Self>) -> Result<Total, Failure> {
        self.total += add.n;
        Ok(Total { value: self.total })
    }
}

impl Handler<Get> for Hooked {
    type Reply = Total;
    async fn handle(&mut self, _: Get, _: &mut Context<Self>) -> Result<Total, Failure> {
        Ok(Total { value: self.total })
    }
}

// ---- Gate: a concurrent actor ----------------------------------------------------------------

/// Waits until `parties` calls are inside the handler at once: only a concurrent actor can
/// answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Meet {
    #[prost(uint32, tag = "1")]
    pub parties: u32,
}

#[derive(Clone)]
pub struct Gate {
    pub inside: Arc<AtomicUsize>,
    pub arrived: Arc<watch::Sender<usize>>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate { inside: Arc::default(), arrived: Arc::new(watch::channel(0).0) }
    }
}

impl Actor for Gate {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Meet>("Meet").message::<Boom>("Boom");
    }
}

impl Handler<Meet> for Gate {
    type Reply = Hops;
    async fn handle(&mut self, m: Meet, _: &mut Context<Self>) -> Result<Hops, Failure> {
        let inside = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.arrived.send_replace(inside);
        let mut arrived = self.arrived.subscribe();
        arrived.wait_for(|n| *n >= m.parties as usize).await?;
        Ok(Hops { hops: inside as u32 })
    }
}

impl Handler<Boom> for Gate {
    type Reply = Empty;
    async fn handle(&mut self, _: Boom, _: &mut Context<Self>) -> Result<Empty, Failure> {
        panic!("gate exploded")
    }
}

/// Registers every type above under its name.
pub fn register(builder: ActorPoolBuilder) -> ActorPoolBuilder {
    builder
        .register("Counter", |init: CounterInit| {
            if init.start < 0 {
                return Err(Failure::msg("a counter cannot start below zero"));
            }
            if init.start == 666 {
                panic!("the factory panicked");
            }
            Ok(Counter {
                total: init.start,
                fail_start: init.fail_start,
                fail_stop: init.fail_stop,
            })
        })
        .register("Relay", |_: Empty| Ok(Relay))
        .register("Peer", |_: Empty| Ok(Peer::default()))
        .register("Hooked", |init: HookedInit| {
            Ok(Hooked { log: init.log.ok_or_else(|| Failure::msg("no log"))?, total: 0 })
        })
        .register_concurrent("Gate", 8, |_: Empty| Ok(Gate::default()))
        .register("Sleeper", |_: Empty| Ok(Sleeper::default()))
        .register("Ledger", |_: Empty| Ok(Ledger::default()))
        .register("Source", |_: Empty| Ok(Source::default()))
        .register("Store", |_: Empty| Ok(Store::default()))
        .register("EnvReader", |_: Empty| Ok(EnvReader))
        .register("SlowStart", |init: SlowStartInit| Ok(SlowStart { millis: init.millis }))
}

// ---- SlowStart: a start hook that takes a while -----------------------------------------------

#[derive(Clone, PartialEq, prost::Message)]
pub struct SlowStartInit {
    #[prost(uint64, tag = "1")]
    pub millis: u64,
}

/// Its start hook sleeps `millis`.
pub struct SlowStart {
    pub millis: u64,
}

impl Actor for SlowStart {
    async fn on_start(&mut self, _: &mut Context<Self>) -> Result<(), Failure> {
        tokio::time::sleep(std::time::Duration::from_millis(self.millis)).await;
        Ok(())
    }
}

// ---- Impostor: messages that reuse Counter's names with other bodies --------------------------

/// Counter's "Add" name with a string where Counter expects an integer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AddText {
    #[prost(string, tag = "1")]
    pub n: String,
}

/// Counter's "Get" name, expecting a reply with a string where Counter sends an integer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetText {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Text {
    #[prost(string, tag = "1")]
    pub value: String,
}

/// Never created: a ref to a Counter cast to `Impostor` sends Counter's message names with
/// bodies (and expects replies) of other types, as a caller built from another version would.
pub struct Impostor;

impl Actor for Impostor {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<AddText>("Add").message::<GetText>("Get");
    }
}

impl Handler<AddText> for Impostor {
    type Reply = Total;
    async fn handle(&mut self, _: AddText, _: &mut Context<Self>) -> Result<Total, Failure> {
        Ok(Total { value: 0 })
    }
}

impl Handler<GetText> for Impostor {
    type Reply = Text;
    async fn handle(&mut self, _: GetText, _: &mut Context<Self>) -> Result<Text, Failure> {
        Ok(Text::default())
    }
}

// ---- Sleeper: long handlers to cancel, and a probe that hears when one starts ---------------

/// Sleep `ms`; `watch`: take the call's cancellation and answer early when it comes. Tells
/// `probe` once started.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Nap {
    #[prost(uint64, tag = "1")]
    pub ms: u64,
    #[prost(bool, tag = "2")]
    pub watch: bool,
    #[prost(message, optional, tag = "3")]
    pub probe: Option<ActorRef<Probe>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Napped {
    /// The nap ended at a cancel.
    #[prost(bool, tag = "1")]
    pub early: bool,
}

/// Asks a sleeper for its counts.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NapStats {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Naps {
    #[prost(uint32, tag = "1")]
    pub started: u32,
    /// Naps whose handler was dropped before its end.
    #[prost(uint32, tag = "2")]
    pub dropped: u32,
    #[prost(uint32, tag = "3")]
    pub early: u32,
}

/// A serial actor with long handlers. The drop count is shared with a guard inside the
/// handler's future, which runs its `Drop` when the future is dropped at a cancel.
#[derive(Default)]
pub struct Sleeper {
    started: u32,
    early: u32,
    dropped: Arc<AtomicUsize>,
}

struct CountIfDropped(Arc<AtomicUsize>, bool);

impl Drop for CountIfDropped {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Actor for Sleeper {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Nap>("Nap").message::<NapStats>("NapStats");
    }
}

impl Handler<Nap> for Sleeper {
    type Reply = Napped;
    async fn handle(&mut self, nap: Nap, ctx: &mut Context<Self>) -> Result<Napped, Failure> {
        self.started += 1;
        let mut guard = CountIfDropped(self.dropped.clone(), false);
        // Taken before the first await: from then on a cancel is this handler's to answer.
        let cancel = nap.watch.then(|| ctx.cancellation());
        if let Some(probe) = &nap.probe {
            probe.tell(Started {}).await?;
        }
        let sleep = tokio::time::sleep(std::time::Duration::from_millis(nap.ms));
        let early = if let Some(cancel) = cancel {
            tokio::select! {
                () = sleep => false,
                () = cancel.cancelled() => true,
            }
        } else {
            sleep.await;
            false
        };
        self.early += u32::from(early);
        guard.1 = true;
        Ok(Napped { early })
    }
}

impl Handler<NapStats> for Sleeper {
    type Reply = Naps;
    async fn handle(&mut self, _: NapStats, _: &mut Context<Self>) -> Result<Naps, Failure> {
        let dropped = self.dropped.load(Ordering::SeqCst) as u32;
        Ok(Naps { started: self.started, dropped, early: self.early })
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Started {}

/// Hears that a nap started (in the test's process, reached back from the sleeper's).
pub struct Probe {
    pub started: tokio::sync::mpsc::Sender<()>,
}

impl Actor for Probe {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Started>("Started");
    }
}

impl Handler<Started> for Probe {
    type Reply = Empty;
    async fn handle(&mut self, _: Started, _: &mut Context<Self>) -> Result<Empty, Failure> {
        self.started.send(()).await?;
        Ok(Empty {})
    }
}

// ---- Ledger: a handler with a batch implementation of its own -------------------------------

#[derive(Clone, PartialEq, prost::Message)]
pub struct Deposit {
    #[prost(int64, tag = "1")]
    pub amount: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Balance {
    #[prost(int64, tag = "1")]
    pub value: i64,
    /// How many times a handler ran (a batch counts once).
    #[prost(uint32, tag = "2")]
    pub rounds: u32,
}

/// Takes deposits; a negative one fails alone. A batch is applied in one round.
#[derive(Default)]
pub struct Ledger {
    value: i64,
    rounds: u32,
}

impl Ledger {
    fn apply(&mut self, deposit: &Deposit) -> Result<Balance, Failure> {
        if deposit.amount < 0 {
            return Err(Failure::msg(format!("negative deposit {}", deposit.amount)));
        }
        self.value += deposit.amount;
        Ok(Balance { value: self.value, rounds: self.rounds })
    }
}

impl Actor for Ledger {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Deposit>("Deposit");
    }
}

impl Handler<Deposit> for Ledger {
    type Reply = Balance;
    async fn handle(
        &mut self,
        deposit: Deposit,
        _: &mut Context<Self>,
    ) -> Result<Balance, Failure> {
        self.rounds += 1;
        self.apply(&deposit)
    }

    async fn handle_batch(
        &mut self,
        deposits: Vec<Deposit>,
        _: &mut Context<Self>,
    ) -> Vec<Result<Balance, Failure>> {
        self.rounds += 1;
        deposits.iter().map(|deposit| self.apply(deposit)).collect()
    }
}

// ---- Source: a streaming handler -----------------------------------------------------------

/// Stream `n` ticks; the item at `fail_at - 1` is an error, and the stream panics at
/// `panic_at - 1` (0: never).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Count {
    #[prost(uint64, tag = "1")]
    pub n: u64,
    #[prost(uint64, tag = "2")]
    pub fail_at: u64,
    #[prost(uint64, tag = "3")]
    pub panic_at: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Tick {
    #[prost(uint64, tag = "1")]
    pub index: u64,
}

/// Asks how many ticks the source's streams have produced.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Produced {
    #[prost(uint64, tag = "1")]
    pub ticks: u64,
}

/// Streams ticks lazily, counting each as it is produced.
#[derive(Default)]
pub struct Source {
    produced: Arc<AtomicUsize>,
}

impl Actor for Source {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.stream::<Count, Tick>("Count").message::<Produced>("Produced");
    }
}

impl Handler<Count> for Source {
    type Reply = Streaming<Tick>;
    async fn handle(
        &mut self,
        count: Count,
        _: &mut Context<Self>,
    ) -> Result<Streaming<Tick>, Failure> {
        let produced = self.produced.clone();
        let ticks = futures_util::stream::iter(0..count.n).map(move |index| {
            produced.fetch_add(1, Ordering::SeqCst);
            if index + 1 == count.panic_at {
                panic!("the source broke at {index}");
            }
            if index + 1 == count.fail_at {
                return Err(Failure::msg(format!("tick {index} failed")));
            }
            Ok(Tick { index })
        });
        Ok(Streaming::new(ticks))
    }
}

impl Handler<Produced> for Source {
    type Reply = Produced;
    async fn handle(&mut self, _: Produced, _: &mut Context<Self>) -> Result<Produced, Failure> {
        Ok(Produced { ticks: self.produced.load(Ordering::SeqCst) as u64 })
    }
}

// ---- Store: buffers exposed for transfers --------------------------------------------------

/// Expose a fresh zeroed buffer of `len` bytes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Reserve {
    #[prost(uint64, tag = "1")]
    pub len: u64,
}

/// The FNV-1a hash of an exposed buffer, or withdraw it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Inspect {
    #[prost(message, optional, tag = "1")]
    pub buffer: Option<BufferRef>,
    #[prost(bool, tag = "2")]
    pub withdraw: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Fnv {
    #[prost(uint64, tag = "1")]
    pub hash: u64,
}

/// FNV-1a over `bytes`.
pub fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Exposes buffers in its pool and hashes what was written into them.
#[derive(Default)]
pub struct Store {
    buffers: std::collections::HashMap<u64, SharedBuffer>,
}

impl Actor for Store {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Reserve>("Reserve").message::<Inspect>("Inspect");
    }
}

impl Handler<Reserve> for Store {
    type Reply = BufferRef;
    async fn handle(
        &mut self,
        reserve: Reserve,
        ctx: &mut Context<Self>,
    ) -> Result<BufferRef, Failure> {
        let buffer = SharedBuffer::zeroed(reserve.len as usize);
        let exposed = ctx.pool().expose_buffer(buffer.clone());
        self.buffers.insert(exposed.id(), buffer);
        Ok(exposed)
    }
}

impl Handler<Inspect> for Store {
    type Reply = Fnv;
    async fn handle(&mut self, inspect: Inspect, ctx: &mut Context<Self>) -> Result<Fnv, Failure> {
        let exposed = inspect.buffer.ok_or_else(|| Failure::msg("no buffer"))?;
        if inspect.withdraw {
            ctx.pool().withdraw_buffer(&exposed);
            return Ok(Fnv { hash: 0 });
        }
        let buffer = self.buffers.get(&exposed.id()).ok_or_else(|| Failure::msg("not mine"))?;
        Ok(Fnv { hash: fnv(&buffer.lock()) })
    }
}

// ---- EnvReader: what a pool's process sees ---------------------------------------------------

#[derive(Clone, PartialEq, prost::Message)]
pub struct ReadEnv {
    #[prost(string, tag = "1")]
    pub key: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct EnvValue {
    #[prost(string, tag = "1")]
    pub value: String,
    #[prost(uint32, tag = "2")]
    pub pid: u32,
}

/// Reads its process's environment.
pub struct EnvReader;

impl Actor for EnvReader {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<ReadEnv>("ReadEnv");
    }
}

impl Handler<ReadEnv> for EnvReader {
    type Reply = EnvValue;
    async fn handle(&mut self, read: ReadEnv, _: &mut Context<Self>) -> Result<EnvValue, Failure> {
        let value = std::env::var(&read.key).unwrap_or_default();
        Ok(EnvValue { value, pid: std::process::id() })
    }
}
