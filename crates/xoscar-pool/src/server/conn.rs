//! One server connection: reads requests and runs each in its own task, writes replies, answers
//! pings itself, and closes gracefully (go-away) when idle or shutting down.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::Poll;
use std::time::Duration;

use parking_lot::Mutex as SyncMutex;
use tokio::sync::Mutex;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::AbortHandle;
use tokio::time::{Instant, sleep_until};
use xoscar_transport::{FrameReader, FrameWriter, Incoming};
use xoscar_wire::{Envelope, Frame, pb};

use super::Handler;
use crate::Message;
use crate::config::ResolvedServerConfig;
use crate::id_map::IdMap;
use crate::last_seen::LastSeen;

/// State shared by the connection's loops and its request tasks.
struct Shared {
    peer: String,
    in_flight: SyncMutex<IdMap<u64, AbortHandle>>,
    /// Signalled when the last in-flight request finishes.
    drained: Notify,
    last_received: LastSeen,
    last_accepted: AtomicU64,
}

impl Shared {
    /// Forgets a request; true if it was still in flight.
    fn finish(&self, id: u64) -> Option<AbortHandle> {
        let mut in_flight = self.in_flight.lock();
        let handle = in_flight.remove(&id);
        if handle.is_some() && in_flight.is_empty() {
            self.drained.notify_waiters();
        }
        handle
    }

    fn is_drained(&self) -> bool {
        self.in_flight.lock().is_empty()
    }
}

/// Counts the connection as live while it exists.
struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Why the serving phase ended.
enum Phase {
    /// The peer closed or the connection failed: nothing more to do.
    Over,
    /// Close gracefully, telling the peer why.
    GoAway(&'static str),
}

pub(crate) async fn serve_connection<H: Handler>(
    incoming: Incoming,
    handler: Arc<H>,
    config: Arc<ResolvedServerConfig>,
    live: Arc<AtomicUsize>,
    mut shutdown: watch::Receiver<bool>,
) {
    let peer = incoming.peer().to_string();
    let channel = match incoming.handshake().await {
        Ok(channel) => channel,
        Err(error) => {
            tracing::debug!(%peer, %error, "handshake failed");
            return;
        }
    };
    live.fetch_add(1, Relaxed);
    let _live = LiveGuard(live);
    let (mut reader, writer) = channel.split();
    // Shared by the read loop (which writes replies that were ready at once, saving a wake-up)
    // and the write loop (which writes replies from request tasks).
    let writer = Mutex::new(writer);
    let (replies, mut queued) = mpsc::unbounded_channel::<Frame>();
    let shared = Arc::new(Shared {
        peer,
        in_flight: SyncMutex::new(IdMap::default()),
        drained: Notify::new(),
        last_received: LastSeen::new(),
        last_accepted: AtomicU64::new(0),
    });

    let phase = tokio::select! {
        phase = read_requests(&shared, &mut reader, &writer, &replies, &handler, false) => phase,
        phase = write_replies(&shared, &writer, &mut queued) => phase,
        () = idle(&shared, config.idle_timeout) => Phase::GoAway("idle"),
        () = super::stopping(&mut shutdown) => Phase::GoAway("server shutting down"),
    };
    let Phase::GoAway(reason) = phase else { return };

    // Go away: say which requests were accepted, answer them, then close.
    let last_accepted_id = shared.last_accepted.load(Relaxed);
    tracing::debug!(peer = %shared.peer, reason, last_accepted_id, "going away");
    let go_away = Frame::new(
        Envelope::GoAway(pb::GoAway { last_accepted_id, reason: reason.into() }),
        vec![],
    );
    if writer.lock().await.send(go_away).await.is_err() {
        return;
    }
    let finished = tokio::select! {
        phase = read_requests(&shared, &mut reader, &writer, &replies, &handler, true) => matches!(phase, Phase::Over),
        phase = write_replies(&shared, &writer, &mut queued) => matches!(phase, Phase::Over),
        () = drained(&shared) => false,
    };
    if finished {
        return;
    }
    let mut writer = writer.into_inner();
    while let Ok(reply) = queued.try_recv() {
        if writer.feed(reply).await.is_err() {
            return;
        }
    }
    let _ = writer.close().await;
    // Read (and drop) until the caller closes its end too, so ours ends with a FIN, not a reset.
    let _ = tokio::time::timeout(config.close_linger, async {
        while let Ok(Some(_)) = reader.recv().await {}
    })
    .await;
}

async fn read_requests<H: Handler>(
    shared: &Arc<Shared>,
    reader: &mut FrameReader,
    writer: &Mutex<FrameWriter>,
    replies: &mpsc::UnboundedSender<Frame>,
    handler: &Arc<H>,
    going_away: bool,
) -> Phase {
    // Replies written but not flushed: held back while more requests are already buffered, so
    // a batch of requests is answered with one write.
    let mut unflushed = false;
    loop {
        if unflushed && !reader.has_buffered() {
            if let Err(error) = writer.lock().await.flush().await {
                tracing::debug!(peer = %shared.peer, %error, "write failed");
                return Phase::Over;
            }
            unflushed = false;
        }
        let frame = match reader.recv().await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Phase::Over,
            Err(error) => {
                tracing::warn!(peer = %shared.peer, reason = %error, "closing connection");
                return Phase::Over;
            }
        };
        shared.last_received.touch();
        match frame.envelope {
            Envelope::Request(request) if !going_away => {
                shared.last_accepted.fetch_max(request.id, Relaxed);
                let message = Message { header: request.header, payloads: frame.payloads };
                if let Some(reply) =
                    run_request(shared, request.id, message, replies, handler).await
                {
                    match reply_now(writer, reply, replies).await {
                        Ok(wrote) => unflushed |= wrote,
                        Err(()) => return Phase::Over,
                    }
                }
            }
            // Past the go-away's last accepted id: the caller sends it again elsewhere.
            Envelope::Request(_) => {}
            Envelope::Notify(notify) => {
                let handler = handler.clone();
                let message = Message { header: notify.header, payloads: frame.payloads };
                tokio::spawn(async move { handler.notify(message).await });
            }
            Envelope::Cancel(pb::Cancel { id }) => {
                if let Some(handle) = shared.finish(id) {
                    handle.abort();
                }
            }
            Envelope::Ping(pb::Ping { nonce }) => {
                let pong = Frame::new(Envelope::Pong(pb::Pong { nonce }), vec![]);
                match reply_now(writer, pong, replies).await {
                    Ok(wrote) => unflushed |= wrote,
                    Err(()) => return Phase::Over,
                }
            }
            other => {
                tracing::debug!(peer = %shared.peer, kind = ?other.kind(), "ignoring a frame a caller should not send");
            }
        }
    }
}

/// Runs a request: polled once right here, so a handler that answers without waiting costs no
/// task; one that has to wait moves to its own task, so the connection task stays free (to
/// answer pings, read more requests) while it runs.
async fn run_request<H: Handler>(
    shared: &Arc<Shared>,
    id: u64,
    request: Message,
    replies: &mpsc::UnboundedSender<Frame>,
    handler: &Arc<H>,
) -> Option<Frame> {
    let handler = handler.clone();
    let mut call = Box::pin(async move { handler.call(request).await });
    let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
    if let Poll::Ready(response) = first {
        return Some(Frame::response(id, response.header, response.payloads));
    }
    // Registered under the lock the task needs to finish, so it cannot finish first.
    let mut in_flight = shared.in_flight.lock();
    let (task_shared, replies) = (shared.clone(), replies.clone());
    let task = tokio::spawn(async move {
        let response = call.await;
        if task_shared.finish(id).is_some() {
            let frame = Frame::response(id, response.header, response.payloads);
            if replies.send(frame).is_err() {
                tracing::debug!(peer = %task_shared.peer, id, "reply to a closed connection dropped");
            }
        }
    });
    in_flight.insert(id, task.abort_handle());
    None
}

/// Writes a reply from the read loop (without flushing) when the writer is free, else hands it
/// to the write loop. `Ok(true)` when it was written and needs a flush; `Err` when the
/// connection broke.
async fn reply_now(
    writer: &Mutex<FrameWriter>,
    reply: Frame,
    replies: &mpsc::UnboundedSender<Frame>,
) -> Result<bool, ()> {
    match writer.try_lock() {
        Ok(mut writer) => writer.feed(reply).await.map(|()| true).map_err(drop),
        Err(_) => {
            let _ = replies.send(reply);
            Ok(false)
        }
    }
}

async fn write_replies(
    shared: &Shared,
    writer: &Mutex<FrameWriter>,
    queued: &mut mpsc::UnboundedReceiver<Frame>,
) -> Phase {
    while let Some(first) = queued.recv().await {
        let mut writer = writer.lock().await;
        let mut next = Some(first);
        while let Some(frame) = next {
            if let Err(error) = writer.feed(frame).await {
                tracing::debug!(peer = %shared.peer, %error, "write failed");
                return Phase::Over;
            }
            next = queued.try_recv().ok();
        }
        if let Err(error) = writer.flush().await {
            tracing::debug!(peer = %shared.peer, %error, "write failed");
            return Phase::Over;
        }
    }
    Phase::Over
}

/// Completes once the connection has had no request in flight and received nothing for
/// `timeout`; never if `timeout` is `None`.
async fn idle(shared: &Shared, timeout: Option<Duration>) {
    let Some(timeout) = timeout else { return std::future::pending().await };
    loop {
        if !shared.is_drained() {
            drained(shared).await;
            continue;
        }
        let deadline = shared.last_received.get() + timeout;
        if Instant::now() >= deadline {
            return;
        }
        sleep_until(deadline).await;
    }
}

/// Completes once no request is in flight.
async fn drained(shared: &Shared) {
    loop {
        let notified = shared.drained.notified();
        if shared.is_drained() {
            return;
        }
        notified.await;
    }
}
