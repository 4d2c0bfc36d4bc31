//! The actors of the actor benches, and the raw channel limit they are compared with.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};
use xoscar_actor::{
    Actor, BufferRef, Context, Failure, Handler, RemoteMessages, SharedBuffer, Streaming,
};

/// Echoes byte payloads and counts bumps.
#[derive(Default)]
pub struct Echoer {
    /// How many `u64` messages (bumps) it handled.
    pub bumps: Arc<AtomicU64>,
}

impl Actor for Echoer {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Bytes>("Echo").message::<u64>("Bump");
        messages.stream::<Ticks, u64>("Ticks").message::<Expose>("Expose");
    }
}

/// Asks for a stream of `n` small items (`0..n`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Ticks {
    /// How many items.
    #[prost(uint64, tag = "1")]
    pub n: u64,
}

impl Handler<Ticks> for Echoer {
    type Reply = Streaming<u64>;
    async fn handle(
        &mut self,
        ticks: Ticks,
        _: &mut Context<Self>,
    ) -> Result<Streaming<u64>, Failure> {
        Ok(Streaming::new(futures_util::stream::iter((0..ticks.n).map(Ok))))
    }
}

/// Asks for a buffer of `len` bytes exposed for transfers.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Expose {
    /// Its length.
    #[prost(uint64, tag = "1")]
    pub len: u64,
}

impl Handler<Expose> for Echoer {
    type Reply = BufferRef;
    async fn handle(
        &mut self,
        expose: Expose,
        ctx: &mut Context<Self>,
    ) -> Result<BufferRef, Failure> {
        Ok(ctx.pool().expose_buffer(SharedBuffer::zeroed(expose.len as usize)))
    }
}

/// The raw limit of a stream: a producer task sending `0..n` through a bounded tokio channel
/// of `window` items to this task, which reads them all. Returns how many it read.
pub async fn raw_stream(n: u64, window: usize) -> u64 {
    let (items, mut received) = mpsc::channel::<u64>(window);
    let producer = tokio::spawn(async move {
        for item in 0..n {
            if items.send(item).await.is_err() {
                return;
            }
        }
    });
    let mut read = 0;
    while let Some(item) = received.recv().await {
        debug_assert_eq!(item, read);
        read += 1;
    }
    producer.await.expect("producer");
    read
}

impl Handler<Bytes> for Echoer {
    type Reply = Bytes;
    async fn handle(&mut self, body: Bytes, _: &mut Context<Self>) -> Result<Bytes, Failure> {
        Ok(body)
    }
}

impl Handler<u64> for Echoer {
    type Reply = u64;
    async fn handle(&mut self, n: u64, _: &mut Context<Self>) -> Result<u64, Failure> {
        Ok(self.bumps.fetch_add(n, Relaxed) + n)
    }
}

/// The raw limit of a local ask: a task owning a bounded `mpsc` receiver, answering each
/// request through its `oneshot`.
#[derive(Clone)]
pub struct RawActor {
    requests: mpsc::Sender<(u64, Option<oneshot::Sender<u64>>)>,
}

impl RawActor {
    /// Spawns the task on the current runtime.
    pub fn spawn() -> RawActor {
        let (requests, mut inbox) = mpsc::channel::<(u64, Option<oneshot::Sender<u64>>)>(1024);
        tokio::spawn(async move {
            let mut total = 0u64;
            while let Some((n, reply)) = inbox.recv().await {
                total += n;
                if let Some(reply) = reply {
                    let _ = reply.send(total);
                }
            }
        });
        RawActor { requests }
    }

    /// Asks: send and await the answer.
    pub async fn ask(&self, n: u64) -> u64 {
        let (reply, answer) = oneshot::channel();
        self.requests.send((n, Some(reply))).await.expect("raw actor alive");
        answer.await.expect("raw actor answered")
    }

    /// Tells: send only.
    pub async fn tell(&self, n: u64) {
        self.requests.send((n, None)).await.expect("raw actor alive");
    }
}
