//! The task that owns one caller-side connection: it writes queued frames, reads responses and
//! hands them to their calls, and watches liveness. All three run in one task (no cross-task
//! wake-ups between them) and the first to finish ends the connection.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use xoscar_transport::{Channel, FrameReader, FrameWriter};
use xoscar_wire::{Envelope, Frame, pb};

use super::conn::{Conn, Ending, Outgoing};
use crate::Message;

/// Heartbeat settings of one connection.
#[derive(Clone, Copy)]
pub(crate) struct Liveness {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
}

/// Counts the connection open while the driver lives, and ends it when the driver finishes or
/// is dropped (its runtime shut down): every waiting call learns the outcome.
struct EndGuard {
    conn: Arc<Conn>,
    ending: Ending,
}

impl EndGuard {
    fn new(conn: Arc<Conn>) -> Self {
        conn.counters.connects.fetch_add(1, Relaxed);
        conn.counters.open_connections.fetch_add(1, Relaxed);
        EndGuard { conn, ending: Ending::Dropped }
    }
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.conn.counters.open_connections.fetch_sub(1, Relaxed);
        match &self.ending {
            Ending::Dead(silent_for) => {
                self.conn.counters.dead_peers.fetch_add(1, Relaxed);
                tracing::warn!(endpoint = %self.conn.label, ?silent_for, "dead peer: ping unanswered");
            }
            Ending::Lost(reason) => {
                tracing::debug!(endpoint = %self.conn.label, %reason, "connection lost");
            }
            ending => tracing::debug!(endpoint = %self.conn.label, ?ending, "connection closed"),
        }
        self.conn.end(self.ending.clone());
    }
}

/// Runs the connection until it ends; `on_end` runs last (to leave the pool's map).
pub(crate) async fn drive(
    conn: Arc<Conn>,
    channel: Channel,
    outgoing: mpsc::UnboundedReceiver<Outgoing>,
    liveness: Liveness,
    on_end: impl FnOnce(&Arc<Conn>),
) {
    let mut guard = EndGuard::new(conn.clone());
    let (reader, writer) = channel.split();
    guard.ending = tokio::select! {
        ending = read_loop(&conn, reader) => ending,
        ending = write_loop(&conn, writer, outgoing) => ending,
        ending = watch_liveness(&conn, liveness) => ending,
        () = conn.close_requested.notified() => conn.close_reason(),
    };
    on_end(&conn);
    drop(guard);
}

async fn read_loop(conn: &Conn, mut reader: FrameReader) -> Ending {
    loop {
        let frame = match reader.recv().await {
            Ok(Some(frame)) => frame,
            Ok(None) => return Ending::Lost("the peer closed the connection".into()),
            Err(error) => return Ending::Lost(error.to_string()),
        };
        conn.touch();
        match frame.envelope {
            Envelope::Response(response) => {
                let message = Message { header: response.header, payloads: frame.payloads };
                if !conn.resolve(response.id, message) {
                    tracing::debug!(endpoint = %conn.label, id = response.id, "response for no waiting call (cancelled?), dropped");
                }
                if conn.go_away_done() {
                    return Ending::GoneAway;
                }
            }
            Envelope::Pong(_) => {}
            Envelope::Ping(pb::Ping { nonce }) => {
                conn.queue(Frame::new(Envelope::Pong(pb::Pong { nonce }), vec![]), None);
            }
            Envelope::GoAway(go_away) => {
                tracing::debug!(endpoint = %conn.label, last_accepted = go_away.last_accepted_id, reason = %go_away.reason, "go-away received");
                if conn.go_away(go_away.last_accepted_id) {
                    return Ending::GoneAway;
                }
            }
            other => {
                tracing::warn!(endpoint = %conn.label, kind = ?other.kind(), "unexpected frame from a server, closing");
                return Ending::Lost(format!(
                    "protocol error: a server sent a {:?} frame",
                    other.kind()
                ));
            }
        }
    }
}

async fn write_loop(
    conn: &Conn,
    mut writer: FrameWriter,
    mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
) -> Ending {
    // Leases of one-way sends, released once their frames are written.
    let mut written_leases = Vec::new();
    while let Some(first) = outgoing.recv().await {
        let mut next = Some(first);
        while let Some(Outgoing { frame, lease }) = next {
            if let Err(error) = writer.feed(frame).await {
                return Ending::Lost(error.to_string());
            }
            written_leases.extend(lease);
            next = outgoing.try_recv().ok();
        }
        if let Err(error) = writer.flush().await {
            return Ending::Lost(error.to_string());
        }
        written_leases.clear();
    }
    tracing::trace!(endpoint = %conn.label, "writer queue closed");
    Ending::Dropped
}

/// While a lease is held: ping after `interval` of silence, and give up if nothing at all
/// arrives within `timeout` of the ping.
async fn watch_liveness(conn: &Conn, liveness: Liveness) -> Ending {
    loop {
        if conn.lease_count() == 0 {
            conn.became_busy.notified().await;
            continue;
        }
        let quiet_since = conn.last_received().max(conn.busy_since());
        let ping_at = quiet_since + liveness.interval;
        if Instant::now() < ping_at {
            sleep_until(ping_at).await;
            continue;
        }
        let nonce = conn.next_nonce();
        tracing::trace!(endpoint = %conn.label, nonce, "silent: pinging");
        conn.queue(Frame::new(Envelope::Ping(pb::Ping { nonce }), vec![]), None);
        sleep_until(ping_at + liveness.timeout).await;
        if conn.last_received() < ping_at {
            return Ending::Dead(liveness.interval + liveness.timeout);
        }
    }
}
