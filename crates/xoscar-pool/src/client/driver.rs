//! The task that owns one caller-side connection: it writes queued frames (control frames
//! first), reads answers and hands them to their calls, watches liveness, and closes when asked.
//! All of it runs in one task (no cross-task wake-ups between the parts); the first part to
//! finish ends the connection, and [`EndGuard`] then tells every waiting call.
//!
//! Cancel safety: when one part finishes, the others are dropped. The read loop only loses a
//! frame it has not started to decode; the write loop may drop a frame it took but had not
//! fed: a call's then gets its outcome from [`EndGuard`] (`Retry` if its id was never taken,
//! else "may have been sent"), a one-way message's sender sees its channel closed and reports
//! "may have been sent". Nothing is lost silently.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::{Instant, sleep, sleep_until};
use xoscar_transport::{Activity, Channel, FrameReader, FrameWriter, TransportError};
use xoscar_wire::{Envelope, Frame, ReceivedFrame, pb};

use super::conn::{Conn, Next, Taken};
use super::state::{Answered, Ending, Outcome, Outgoing, State};
use crate::gate::Gated;
use crate::sync::MutexGuard;
use crate::{Message, PoolError};

/// Heartbeat settings of one connection.
#[derive(Clone, Copy)]
pub(crate) struct Liveness {
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
}

/// What runs when a connection's driver ends, e.g. leaving the pool's map.
pub(crate) type OnEnd = Box<dyn FnOnce(&Arc<Conn>) + Send>;

/// Counts the connection open from before its driver is spawned, and ends it when the driver
/// finishes or is dropped, polled or not (a task spawned while its runtime shuts down is
/// dropped unpolled): every waiting call learns its outcome, and the pool forgets it.
pub(crate) struct EndGuard {
    conn: Arc<Conn>,
    ending: Ending,
    on_end: Option<OnEnd>,
}

impl EndGuard {
    pub(crate) fn new(conn: Arc<Conn>, on_end: OnEnd) -> Self {
        conn.counters.connected();
        EndGuard { conn, ending: Ending::Dropped, on_end: Some(on_end) }
    }
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        self.conn.counters.closed(matches!(self.ending, Ending::Dead(_)));
        let endpoint = &self.conn.label;
        match &self.ending {
            Ending::Dead(silent_for) => {
                tracing::warn!(%endpoint, ?silent_for, "dead peer: ping unanswered");
            }
            Ending::Lost { reason, .. } => tracing::debug!(%endpoint, %reason, "connection lost"),
            ending => tracing::debug!(%endpoint, ?ending, "connection closed"),
        }
        // Ended (it takes no more leases) before it leaves the pool's map: a caller that holds
        // it elsewhere (a `RecentConnection`) cannot lease it once the map has forgotten it.
        self.conn.end(self.ending.clone());
        if let Some(on_end) = self.on_end.take() {
            on_end(&self.conn);
        }
    }
}

/// Runs the connection until it ends.
pub(crate) async fn drive(mut guard: EndGuard, channel: Channel, liveness: Liveness) {
    let conn = guard.conn.clone();
    let server_elsewhere = !channel.peer_in_this_process();
    let (reader, writer) = channel.split();
    let (reads, writes) = (reader.activity(), writer.activity());
    // Gated: polled only when their own timer or signal fired, not each time the task wakes
    // for a frame read or written (several times per call made one at a time; each poll of
    // their signals and timer cost atomic operations).
    let watch = pin!(watch_liveness(&conn, liveness, &reads, &writes));
    let close = pin!(close_when_asked(&conn, liveness.timeout));
    let (watch, close) = (Gated::new(watch), Gated::new(close));
    guard.ending = tokio::select! {
        ending = read_loop(&conn, reader, server_elsewhere) => ending,
        ending = write_loop(&conn, writer) => ending,
        ending = watch => ending,
        ending = close => ending,
    };
}

fn broken(error: TransportError) -> Ending {
    Ending::Lost { reason: error.to_string(), source: Some(Arc::new(error)) }
}

async fn read_loop(conn: &Conn, mut reader: FrameReader, server_elsewhere: bool) -> Ending {
    // The callers a run of answers woke, kept between runs so it allocates only once.
    let mut woken = Vec::new();
    let per_run = if server_elsewhere { FRAMES_BEFORE_YIELD } else { usize::MAX };
    loop {
        // Frames already read are taken without an await; `recv` only once they run out.
        let received = match reader.try_recv() {
            Some(received) => received.map(Some),
            None => reader.recv().await,
        };
        let frame = match received {
            Ok(Some(frame)) => frame,
            Ok(None) if conn.state().go_away_seen() => return Ending::GoneAway,
            Ok(None) => return Ending::lost("the peer closed the connection"),
            Err(error) => return broken(error),
        };
        match read_run(conn, &mut reader, frame, &mut woken, per_run) {
            Ok(Run::Drained) => {}
            // Cancel-safe: the frames not taken stay in the reader.
            Ok(Run::Cut) => tokio::task::yield_now().await,
            Err(ending) => return ending,
        }
    }
}

/// Frames a run takes before the read loop yields, with a server in another process: the
/// callers it woke then make their next requests, and the write loop (in this task) sends them
/// while the rest of the answers wait, so the server starts on them at once (see
/// docs/architecture.md, "Answers in parts").
const FRAMES_BEFORE_YIELD: usize = 16;

/// How a run of frames ended.
enum Run {
    /// No frame is left buffered.
    Drained,
    /// Cut after its frame limit, with frames maybe still buffered.
    Cut,
}

/// Answers put in their slots under one lock of the connection's state, at most.
const ANSWERS_PER_LOCK: usize = 32;

/// Handles `first` and the frames already read after it, up to `limit` in all, without an
/// await. Answers to plain calls go into their slots under one lock (for up to
/// [`ANSWERS_PER_LOCK`] in a row; each lock round trip is two atomic read-modify-writes), and
/// their callers are woken once it is released. Everything else is handled as it comes,
/// outside that lock.
fn read_run(
    conn: &Conn,
    reader: &mut FrameReader,
    first: ReceivedFrame,
    woken: &mut Vec<std::task::Waker>,
    limit: usize,
) -> Result<Run, Ending> {
    let mut answers = Answers { conn, state: None, under_lock: 0, woken, finish: false };
    let mut frame = first;
    for _ in 1..limit {
        read_frame(&mut answers, frame)?;
        frame = match reader.try_recv() {
            Some(Ok(frame)) => frame,
            Some(Err(error)) => return Err(broken(error)),
            None => return Ok(Run::Drained),
        };
    }
    read_frame(&mut answers, frame)?;
    Ok(Run::Cut)
}

/// The lock [`read_run`] holds over a run of answers, and the callers to wake once it is
/// released (on drop too: an error ending the run wakes them all the same).
struct Answers<'a> {
    conn: &'a Conn,
    state: Option<MutexGuard<'a, State>>,
    /// Answers put in their slots under the lock held now.
    under_lock: usize,
    woken: &'a mut Vec<std::task::Waker>,
    /// The last open stream ended while going away: the writer may shut our side.
    finish: bool,
}

impl Answers<'_> {
    /// Puts `outcome` in call `id`'s slot. False if no call waits for it.
    fn answer(&mut self, id: u64, outcome: Outcome) -> bool {
        if self.under_lock == ANSWERS_PER_LOCK {
            self.release();
        }
        let state = self.state.get_or_insert_with(|| self.conn.state());
        self.under_lock += 1;
        match state.answer(id, outcome) {
            Some(Answered::Call(waker)) => self.woken.extend(waker),
            // The last open stream ending may let a connection that is going away shut its
            // side.
            Some(Answered::Stream) => self.finish |= state.should_finish(),
            None => return false,
        }
        true
    }

    /// Releases the lock, then wakes the callers answered under it.
    fn release(&mut self) {
        self.state = None;
        self.under_lock = 0;
        if std::mem::take(&mut self.finish) {
            self.conn.wake_writer.notify();
        }
        for waker in self.woken.drain(..) {
            waker.wake();
        }
    }
}

impl Drop for Answers<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

/// One frame read from the server. `Err`: the connection ends.
fn read_frame(answers: &mut Answers<'_>, frame: ReceivedFrame) -> Result<(), Ending> {
    let conn = answers.conn;
    let Some(response) = frame.response() else {
        // Only an answer goes under the run's lock: everything else takes the lock itself.
        answers.release();
        return read_other(conn, frame.into_frame().envelope);
    };
    let status = pb::response::Status::try_from(response.status);
    if response.more && status == Ok(pb::response::Status::Ok) {
        answers.release();
        let (header, payloads) = frame.into_parts();
        if let Err(violation) = conn.stream_item(response.id, Message { header, payloads }) {
            return Err(Ending::lost(format!("protocol error: {violation}")));
        }
        return Ok(());
    }
    let outcome = match status {
        Ok(pb::response::Status::Ok) => {
            let (header, payloads) = frame.into_parts();
            Outcome::Response(Message { header, payloads })
        }
        Ok(pb::response::Status::HandlerPanicked) => {
            let message = String::from_utf8_lossy(frame.header()).into_owned();
            Outcome::Failed(PoolError::HandlerPanicked {
                address: conn.label.to_string(),
                message: (!message.is_empty()).then_some(message),
            })
        }
        Ok(pb::response::Status::Cancelled) => {
            Outcome::Failed(PoolError::Cancelled { address: conn.label.to_string(), sent: true })
        }
        Ok(pb::response::Status::Refused) => Outcome::Failed(PoolError::Refused {
            address: conn.label.to_string(),
            reason: "too many open streams on the connection",
        }),
        Ok(pb::response::Status::TooLarge) => Outcome::Failed(PoolError::ResponseTooLarge {
            address: conn.label.to_string(),
            reason: String::from_utf8_lossy(frame.header()).into_owned(),
        }),
        Err(_) => {
            return Err(Ending::lost(format!(
                "protocol error: unknown response status {}",
                response.status
            )));
        }
    };
    if !answers.answer(response.id, outcome) {
        tracing::debug!(endpoint = %conn.label, id = response.id, "response for no waiting call (cancelled?), dropped");
    }
    Ok(())
}

/// A frame from the server other than a response.
fn read_other(conn: &Conn, envelope: Envelope) -> Result<(), Ending> {
    match envelope {
        // Any frame proves life; the reader's activity clock already moved.
        Envelope::Pong(_) => {}
        Envelope::Ping(pb::Ping { nonce }) => {
            conn.queue_control(Frame::new(Envelope::Pong(pb::Pong { nonce }), vec![]));
        }
        Envelope::GoAway(go_away) => {
            tracing::debug!(endpoint = %conn.label, last_accepted = go_away.last_accepted_id, reason = %go_away.reason, "go-away received");
            conn.go_away(go_away.last_accepted_id);
        }
        other => {
            tracing::warn!(endpoint = %conn.label, kind = ?other.kind(), "unexpected frame from a server, closing");
            return Err(Ending::lost(format!(
                "protocol error: a server sent a {:?} frame",
                other.kind()
            )));
        }
    }
    Ok(())
}

/// Writes what is queued, control frames first, flushing once nothing more is waiting. Once
/// past its high-water mark the transport flushes before taking the next frame, so a large
/// frame goes out with at most one more, and a ping waits for at most the batch being
/// written. After a go-away, shuts our sending side
/// once everything queued before it is written, then idles until the server closes.
async fn write_loop(conn: &Conn, mut writer: FrameWriter) -> Ending {
    let mut batch = Batch { conn, taken: Taken::default() };
    let mut senders = Vec::new();
    let (mut unflushed, mut unflushed_bytes) = (false, 0);
    loop {
        let next = conn.take_outgoing(&mut batch.taken);
        if !batch.taken.is_empty() {
            while let Some(Outgoing { frame, bytes, sent }) = batch.taken.frames.pop_front() {
                let fed = match writer.try_feed(frame) {
                    Ok(None) => Ok(()),
                    Ok(Some(frame)) => writer.feed(frame).await,
                    Err(error) => Err(error),
                };
                if let Err(error) = fed {
                    return broken(error);
                }
                unflushed_bytes += bytes;
                senders.extend(sent);
                if conn.is_refused() {
                    // A final go-away came while we wrote: the server reads nothing more, so
                    // the rest goes back (re-sent elsewhere), not into the void.
                    conn.unfed(&mut batch.taken);
                }
            }
            if !batch.taken.encoded.is_empty() {
                if conn.is_refused() {
                    conn.unfed(&mut batch.taken);
                } else {
                    // Taken whole or not at all: what is not taken goes back on drop.
                    let encoded = &mut batch.taken.encoded;
                    let fed = match writer.try_feed_encoded(&mut encoded.bytes) {
                        Ok(true) => Ok(()),
                        Ok(false) => writer.feed_encoded(&mut encoded.bytes).await,
                        Err(error) => Err(error),
                    };
                    if let Err(error) = fed {
                        return broken(error);
                    }
                    // Emptied field by field: its bytes' buffer, now empty, keeps its block for
                    // the next batch (the connection's queue takes it in exchange for the one
                    // it fills), so encoding allocates nothing once blocks go round.
                    unflushed_bytes += std::mem::take(&mut encoded.counted);
                    senders.append(&mut encoded.senders);
                    encoded.first_request = None;
                }
            }
            unflushed = true;
            continue;
        }
        if unflushed {
            if let Err(error) = writer.flush().await {
                return broken(error);
            }
            conn.written(unflushed_bytes, &mut senders);
            (unflushed, unflushed_bytes) = (false, 0);
            continue;
        }
        match next {
            Next::Write => {}
            Next::Finish => {
                if let Err(error) = writer.close().await {
                    return broken(error);
                }
                conn.state().finished();
                return std::future::pending().await;
            }
            // A signal keeps a permit when nobody waits, so a frame queued since the look
            // above still wakes us.
            Next::Wait => conn.wake_writer.notified().await,
        }
    }
}

/// Frames the writer took, fed in order. If the connection ends mid-batch (a write error, or
/// the select dropping the write loop), the ones not yet fed go back to the connection on drop:
/// they were never sent, and their calls and senders must learn that, not "may have run".
struct Batch<'a> {
    conn: &'a Conn,
    taken: Taken,
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if !self.taken.is_empty() {
            self.conn.unfed(&mut self.taken);
        }
    }
}

/// While a lease is held: ping after `interval` with nothing received, and declare the peer
/// dead if still nothing has arrived `timeout` after the ping was written. A ping stuck behind
/// a frame the peer does not take (the writer makes no progress) counts from the writer's
/// last progress, so a blackholed transfer is caught too; a slow but moving transfer is not
/// mistaken for a dead peer.
async fn watch_liveness(
    conn: &Conn,
    liveness: Liveness,
    reads: &Activity,
    writes: &Activity,
) -> Ending {
    let mut nonce = 0u64;
    // One timer for the life of the connection, moved only when it must be: a connection busy
    // with back-to-back calls does not register a timer per call.
    let mut timer = pin!(sleep(liveness.interval));
    loop {
        let busy_since = conn.state().busy_since();
        let Some(busy_since) = busy_since else {
            // A signal keeps a permit, so a lease taken since the look above still wakes us.
            conn.became_busy.notified().await;
            continue;
        };
        let quiet_since = reads.last().max(busy_since);
        let ping_at = quiet_since + liveness.interval;
        let now = Instant::now();
        if now < ping_at {
            if timer.is_elapsed() || timer.deadline() > ping_at {
                timer.as_mut().reset(ping_at);
            }
            (&mut timer).await;
            continue;
        }
        nonce += 1;
        tracing::trace!(endpoint = %conn.label, nonce, "silent: pinging");
        conn.queue_control(Frame::new(Envelope::Ping(pb::Ping { nonce }), vec![]));
        let pinged_at = now;
        loop {
            if reads.last() > quiet_since || conn.state().leases() == 0 {
                break;
            }
            let deadline = writes.last().max(pinged_at) + liveness.timeout;
            let now = Instant::now();
            if now >= deadline {
                return Ending::Dead(now.duration_since(quiet_since));
            }
            // Looks again one interval after the ping too: a pong that came quickly then starts
            // the next ping's interval from itself, not from this verdict's deadline.
            let checkpoint = pinged_at + liveness.interval;
            sleep_until(if now < checkpoint { deadline.min(checkpoint) } else { deadline }).await;
        }
    }
}

/// Ends the connection when a close is asked for and ready, or when the server went away and
/// the connection has no lease left (waiting up to `grace` for the server's own close).
async fn close_when_asked(conn: &Conn, grace: Duration) -> Ending {
    loop {
        // A signal keeps a permit: a request made after the look below still wakes the wait.
        let (ready, gone_and_unused) = {
            let state = conn.state();
            (state.close_ready(), state.go_away_seen() && state.leases() == 0)
        };
        if let Some(ending) = ready {
            return ending;
        }
        if gone_and_unused {
            tokio::select! {
                () = sleep(grace) => return Ending::GoneAway,
                () = conn.close_requested.notified() => continue,
            }
        }
        conn.close_requested.notified().await;
    }
}

#[cfg(all(test, not(xoscar_loom)))]
mod tests {
    use bytes::Bytes;
    use xoscar_transport::Address;
    use xoscar_wire::FrameEncoder;

    use super::*;

    /// Three calls queued on `conn`, taken by the writer in one batch.
    fn three_taken(conn: &Conn) -> (Vec<u64>, Batch<'_>) {
        let frame = Frame::request(0, Bytes::from_static(b"r"), vec![]);
        let calls: Vec<_> =
            (0..3).map(|_| conn.try_queue_call(&frame).ok().expect("room")).collect();
        let mut batch = Batch { conn, taken: Taken::default() };
        assert!(matches!(conn.take_outgoing(&mut batch.taken), Next::Write));
        (calls, batch)
    }

    /// The outcome in each call's slot once the connection ended.
    fn outcomes_after_end(conn: &Conn, calls: &[u64]) -> Vec<Outcome> {
        conn.end(Ending::lost("reset"));
        let mut cx = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
        let outcome = |&id| match conn.poll_outcome(id, &mut cx) {
            std::task::Poll::Ready(Some(outcome)) => outcome,
            _ => panic!("no outcome for call {id}"),
        };
        calls.iter().map(outcome).collect()
    }

    #[test]
    fn requests_the_writer_took_but_never_fed_count_as_never_sent() {
        let conn = Conn::new(Address::inproc("unfed"), Arc::default(), usize::MAX, None);
        let (calls, mut batch) = three_taken(&conn);
        assert_eq!(batch.taken.frames.len(), 3, "one batch");
        // The first is fed; then the connection ends and the write loop is dropped.
        let fed = batch.taken.frames.pop_front();
        drop(batch);
        drop(fed);
        let outcomes = outcomes_after_end(&conn, &calls);
        assert!(matches!(&outcomes[0], Outcome::Failed(e) if !e.is_retry_safe()), "{outcomes:?}");
        assert!(matches!(outcomes[1..], [Outcome::Retry, Outcome::Retry]), "{outcomes:?}");
    }

    #[test]
    fn encoded_requests_the_writer_took_but_never_fed_count_as_never_sent() {
        let encoder = Some(FrameEncoder::default());
        let conn = Conn::new(Address::inproc("unfed"), Arc::default(), usize::MAX, encoder);
        let (calls, batch) = three_taken(&conn);
        assert!(batch.taken.frames.is_empty(), "taken as bytes");
        assert!(!batch.taken.encoded.is_empty(), "taken as bytes");
        // The connection ends before the batch is fed: the write loop is dropped.
        drop(batch);
        let outcomes = outcomes_after_end(&conn, &calls);
        assert!(outcomes.iter().all(|o| matches!(o, Outcome::Retry)), "{outcomes:?}");
    }
}
