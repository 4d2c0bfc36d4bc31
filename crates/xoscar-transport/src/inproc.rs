//! In-process channels: frames move as values through tokio mpsc queues, no sockets and no
//! encoding. Listeners are found by name in a process-wide registry.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use tokio::sync::{mpsc, oneshot};
use xoscar_wire::{Frame, Limits};

use crate::{Activity, TransportConfig, TransportError};

/// One end of an in-process channel: its reading and its sending half.
pub(crate) type Halves = (Receiver, Sender);

/// Listeners by name. Each entry is the queue of dials waiting to be accepted.
static REGISTRY: LazyLock<Mutex<HashMap<String, mpsc::Sender<Pending>>>> =
    LazyLock::new(Default::default);

fn registry() -> std::sync::MutexGuard<'static, HashMap<String, mpsc::Sender<Pending>>> {
    // The map stays consistent even if a holder panicked: every update is a single insert/remove.
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The receiving end of one direction.
pub(crate) struct Receiver {
    queue: mpsc::Receiver<Frame>,
    activity: Activity,
}

impl Receiver {
    fn new(queue: mpsc::Receiver<Frame>) -> Self {
        Receiver { queue, activity: Activity::new() }
    }

    pub(crate) async fn recv(&mut self) -> Option<Frame> {
        let frame = self.queue.recv().await;
        if frame.is_some() {
            self.activity.touch();
        }
        frame
    }

    /// The next frame if one is queued; `None` when the queue is empty (or closed).
    pub(crate) fn try_recv(&mut self) -> Option<Frame> {
        let frame = self.queue.try_recv().ok()?;
        self.activity.touch();
        Some(frame)
    }

    pub(crate) fn activity(&self) -> &Activity {
        &self.activity
    }
}

/// The sending end of one direction; checks the same limits a socket's encoder would.
pub(crate) struct Sender {
    queue: Option<mpsc::Sender<Frame>>,
    limits: Limits,
    activity: Activity,
}

impl Sender {
    fn new(queue: mpsc::Sender<Frame>, limits: Limits) -> Self {
        Sender { queue: Some(queue), limits, activity: Activity::new() }
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Hands `frame` over if the peer's queue has room; gives it back when full.
    pub(crate) fn try_send(
        &mut self,
        frame: Frame,
        peer: &Arc<str>,
    ) -> Result<Option<Frame>, TransportError> {
        self.limits
            .admit(&frame)
            .map_err(|source| TransportError::Protocol { peer: peer.to_string(), source })?;
        let queue = self.queue.as_ref().ok_or_else(|| lost(peer, "this writer was closed"))?;
        match queue.try_send(frame) {
            Ok(()) => Ok(None),
            Err(mpsc::error::TrySendError::Full(frame)) => Ok(Some(frame)),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(lost(peer, PEER_GONE)),
        }
    }

    /// Hands `frame` over, waiting while the peer's queue is full. The synchronous try first
    /// skips the semaphore future when there is room, the common case. Waiting for room is
    /// cancel safe: a frame is either in the peer's queue or dropped with the future, never
    /// half sent.
    pub(crate) async fn send(
        &mut self,
        frame: Frame,
        peer: &Arc<str>,
    ) -> Result<(), TransportError> {
        let Some(frame) = self.try_send(frame, peer)? else { return Ok(()) };
        let queue = self.queue.as_ref().ok_or_else(|| lost(peer, "this writer was closed"))?;
        queue.send(frame).await.map_err(|_| lost(peer, PEER_GONE))?;
        // Progress after waiting for the peer (see `FrameWriter::activity`).
        self.activity.touch();
        Ok(())
    }

    pub(crate) fn activity(&self) -> &Activity {
        &self.activity
    }

    pub(crate) fn close(&mut self) {
        self.queue = None;
    }
}

/// A dial waiting to be accepted: the listener's halves of the new channel, and the dialler
/// waiting to hear that it was.
pub(crate) struct Pending {
    reader: Receiver,
    writer: Sender,
    accepted: oneshot::Sender<()>,
}

impl Pending {
    /// Completes the dial (the in-process counterpart of a handshake): only now does the
    /// dialler's `connect` return. A pending dial dropped instead (the listener closed, or the
    /// server gave up on it) fails that `connect`, so nothing is written into a channel nobody
    /// will read.
    pub(crate) fn accept(self) -> Halves {
        let _ = self.accepted.send(());
        (self.reader, self.writer)
    }
}

/// A named in-process listener; dropping it frees the name.
pub(crate) struct Listener {
    name: String,
    dials: mpsc::Receiver<Pending>,
    registered: mpsc::Sender<Pending>,
}

impl Listener {
    pub(crate) fn bind(name: &str, config: &TransportConfig) -> Result<Self, TransportError> {
        let mut registry = registry();
        if registry.get(name).is_some_and(|existing| !existing.is_closed()) {
            return Err(TransportError::AddressInUse {
                address: format!("inproc://{name}"),
                reason: "an in-process listener already has that name",
            });
        }
        let (registered, dials) = mpsc::channel(config.backlog as usize);
        registry.insert(name.to_string(), registered.clone());
        Ok(Listener { name: name.to_string(), dials, registered })
    }

    pub(crate) async fn accept(&mut self) -> Pending {
        // The registry holds a sender for as long as we live, so the queue never closes.
        self.dials.recv().await.expect("the registry keeps the dial queue open")
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let mut registry = registry();
        if registry.get(&self.name).is_some_and(|entry| entry.same_channel(&self.registered)) {
            registry.remove(&self.name);
        }
    }
}

/// Dials the listener named `name`, and waits until it accepts (the caller bounds the wait
/// with the connect timeout).
pub(crate) async fn connect(
    name: &str,
    config: &TransportConfig,
) -> Result<Halves, TransportError> {
    let address = format!("inproc://{name}");
    let refused = || TransportError::ConnectionRefused { address: address.clone() };
    let dials = registry().get(name).cloned().ok_or_else(refused)?;
    let (to_listener, from_dialler) = mpsc::channel(config.inproc_capacity);
    let (to_dialler, from_listener) = mpsc::channel(config.inproc_capacity);
    let (accepted, on_accept) = oneshot::channel();
    let pending = Pending {
        reader: Receiver::new(from_dialler),
        writer: Sender::new(to_dialler, config.limits),
        accepted,
    };
    dials.try_send(pending).map_err(|error| match error {
        mpsc::error::TrySendError::Full(_) => {
            TransportError::ListenerBusy { address: address.clone() }
        }
        mpsc::error::TrySendError::Closed(_) => refused(),
    })?;
    // Dropped unaccepted: the listener closed with the dial still queued.
    on_accept.await.map_err(|_| refused())?;
    Ok((Receiver::new(from_listener), Sender::new(to_listener, config.limits)))
}

/// Why an in-process send failed when the peer's reader is gone.
const PEER_GONE: &str = "the in-process peer dropped its reader";

/// The connection to `peer` is lost, for `reason`.
fn lost(peer: &str, reason: &str) -> TransportError {
    TransportError::ConnectionLost { peer: peer.to_string(), reason: reason.to_string() }
}
