//! One server connection: a read side (requests, one-way messages, cancels, pings; flow
//! control; idle watch and go-away) and a write side (answers, control frames first), run
//! together in the connection's task; then a graceful close.
//!
//! Going away is a drain, not a cut: the server sends `GoAway { last_accepted_id: u64::MAX }`
//! and goes on serving whatever arrives until the caller shuts its sending side (which an
//! xoscar-rs caller does once it has written what it had queued), so nothing the caller sent
//! is discarded. Only a caller silent for `drain_timeout` gets a final go-away naming the last
//! request accepted (the caller re-sends the rest) and is closed.
//!
//! Neither side is ever cancelled half-way: when one ends, the other runs to its own end (or the
//! whole connection is dropped, as when the server is aborted), so no answer taken off a queue
//! is lost.

use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until};
use xoscar_transport::{FrameReader, FrameWriter, Incoming, TransportError};
use xoscar_wire::{Envelope, Frame, FrameKind, ReceivedFrame, RequestHead, WriteBuf, pb};

use super::dispatch::{
    deadline_after, poll_once, reply, request_future, respond, run_notify, spawn_request,
};
use super::state::{ServerConn, message_bytes};
use super::writer::{SharedWriter, TakenWriter};
use super::{Handler, ServerCounters};
use crate::Message;
use crate::config::ResolvedServerConfig;
use crate::gate::Gated;

/// Marks the read side as waiting for the socket while it lives (whichever way the wait
/// ends).
struct ReadSideWaiting<'a>(&'a ServerConn);

impl<'a> ReadSideWaiting<'a> {
    fn new(conn: &'a ServerConn) -> Self {
        conn.set_read_side_waiting(true);
        ReadSideWaiting(conn)
    }
}

impl Drop for ReadSideWaiting<'_> {
    fn drop(&mut self) {
        self.0.set_read_side_waiting(false);
    }
}

/// Counts the connection as live while it exists.
struct LiveGuard(Arc<ServerCounters>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.closed();
    }
}

/// Stops the connection's handler tasks when the connection task ends or is dropped, and
/// drops its writer: the socket closes then, even while a responder holds the connection.
struct AbortHandlers(Arc<ServerConn>);

impl Drop for AbortHandlers {
    fn drop(&mut self) {
        self.0.abort_all();
        self.0.writer.retire();
    }
}

/// How the read side ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadEnd {
    /// The caller closed while being served normally, or the connection broke: the caller is
    /// gone, so its requests are cancelled.
    CallerGone,
    /// The caller closed its sending side after a go-away: answer what was accepted, close.
    CallerClosed,
    /// The caller stayed silent after a go-away: a final go-away was queued.
    StoppedReading,
}

pub(crate) async fn serve_connection<H: Handler>(
    incoming: Incoming,
    handler: Arc<H>,
    config: Arc<ResolvedServerConfig>,
    counters: Arc<ServerCounters>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (peer, peer_pid) = (incoming.peer().to_string(), incoming.peer_pid());
    let channel = tokio::select! {
        result = incoming.handshake() => match result {
            Ok(channel) => channel,
            Err(error @ TransportError::AuthFailed { .. }) => {
                if counters.refused() {
                    tracing::warn!(%peer, %error, "refused a peer that did not authenticate");
                } else {
                    tracing::debug!(%peer, %error, "refused a peer that did not authenticate");
                }
                return;
            }
            Err(error) => {
                tracing::debug!(%peer, %error, "handshake failed");
                return;
            }
        },
        () = super::stopping(&mut shutdown) => return,
    };
    counters.opened();
    let _live = LiveGuard(counters);
    let caller_elsewhere = !channel.peer_in_this_process();
    let (reader, writer) = channel.split();
    let limits = writer.limits();
    let conn = Arc::new(ServerConn::new(
        peer,
        peer_pid,
        caller_elsewhere,
        limits,
        config.clone(),
        reader.activity(),
        writer,
    ));
    let _abort = AbortHandlers(conn.clone());
    // Shared by the read side (which writes answers that were ready at once, saving a
    // wake-up), the write side (answers from handler tasks, control frames) and a handler
    // task answering the only request in flight.
    let writer = &conn.writer;

    let (read, write) = (
        pin!(read_side(&conn, reader, writer, &handler, shutdown)),
        pin!(write_side(&conn, writer)),
    );
    // Each side polled only for its own wake-ups: an answer queued from a handler's task
    // (every actor call) would otherwise poll the read side's socket and timers for nothing,
    // and a request read would poll the write side's queue.
    let (mut read, mut write) = (Gated::new(read), Gated::new(write));
    let (end, reader) = tokio::select! {
        ended = &mut read => ended,
        _broken = &mut write => (ReadEnd::CallerGone, None),
    };
    let answered = end != ReadEnd::CallerGone && {
        // Reading is over, so no credit can come: open streams end here.
        conn.cancel_streams();
        conn.start_closing();
        write.await.is_ok()
    };
    if !answered {
        // The caller is gone or unreachable: its requests are cancelled. What it sent one-way
        // was read, so it is still handed to the handler, never dropped.
        conn.cancel_requests();
        handled_notifies(&conn).await;
        return;
    }
    if end == ReadEnd::StoppedReading
        && let Some(reader) = reader
    {
        linger(&conn, reader, &handler).await;
    }
}

/// After a final go-away: reads until the caller closes too, so ours ends with a FIN, not a
/// reset that could destroy answers still travelling to it. Requests read now are dropped (the
/// go-away named the last one accepted, so the caller sends them again); one-way messages,
/// which no go-away can refuse, are still handed to the handler.
async fn linger<H: Handler>(conn: &Arc<ServerConn>, mut reader: FrameReader, handler: &Arc<H>) {
    let _ = tokio::time::timeout(conn.config.close_linger, async {
        while let Ok(Some(frame)) = reader.recv().await {
            if frame.kind() == FrameKind::Notify {
                let (header, payloads) = frame.into_parts();
                run_notify(conn, handler, Message { header, payloads }).await;
            }
        }
    })
    .await;
    handled_notifies(conn).await;
}

/// A pong that answers no ping: it tells a caller whose pings cannot be read that we live.
fn keepalive() -> Frame {
    Frame::new(Envelope::Pong(pb::Pong { nonce: 0 }), vec![])
}

/// Completes once every one-way message read from the connection has been handled.
async fn handled_notifies(conn: &ServerConn) {
    until_progress(conn, ServerConn::notifies_done).await;
}

/// Completes once `done` holds, looked at again at each progress signal (registered before
/// each look, so a release in between is not missed).
async fn until_progress(conn: &ServerConn, done: impl Fn(&ServerConn) -> bool) {
    loop {
        let progress = conn.progress.notified();
        let mut progress = pin!(progress);
        progress.as_mut().enable();
        if done(conn) {
            return;
        }
        progress.await;
    }
}

/// Where the read side is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading and serving.
    Serving,
    /// A go-away was sent: still reading and serving everything that arrives, until the
    /// caller closes its sending side.
    Draining,
}

async fn read_side<H: Handler>(
    conn: &Arc<ServerConn>,
    mut reader: FrameReader,
    writer: &SharedWriter,
    handler: &Arc<H>,
    shutdown: watch::Receiver<bool>,
) -> (ReadEnd, Option<FrameReader>) {
    let config = conn.config.clone();
    let mut phase = Phase::Serving;
    // The highest request id accepted: named by a final go-away.
    let mut last_accepted = 0;
    // Frames (answers, pongs) written inline but not flushed: held back while more requests
    // are already buffered, so a batch of requests is answered with one write (or, for a
    // caller in another process, a write per `ANSWERS_PER_FLUSH`).
    let mut unflushed = 0;
    let mut stopping = false;
    // When reading last resumed: the drain's silence only counts while we read.
    let mut reading_since = Instant::now();
    // Made once: futures made per frame would register waiters and timers per frame. Gated:
    // polled only when their own wake-up came, not each time a frame arrives.
    let (stop, idle) =
        (pin!(super::stopping_owned(shutdown)), pin!(idle(conn, config.idle_timeout)));
    let (mut stop, mut idle) = (Gated::new(stop), Gated::new(idle));
    let mut drain_timer = pin!(sleep(Duration::ZERO));
    // The box of the last request future that finished on its first poll, and the reference
    // to the handler it handed back, for the next one.
    let (mut spare, mut own_handler) = (None, None);
    // The writer, kept from one inline answer to the next while requests are already
    // buffered, so that a batch takes it out of its slot and puts it back once, not per
    // answer. `flush` puts it back, and so does every other path before an await that can
    // wait: the write side (in this same task) never waits for it while it is held here.
    let mut held: Option<TakenWriter<'_>> = None;
    loop {
        if !conn.has_room() {
            // Answers written so far must not wait for the pause to end.
            if flush(writer, &mut held, &mut unflushed).await.is_err() {
                return (ReadEnd::CallerGone, Some(reader));
            }
            if wait_for_room(conn, Pin::new(&mut stop), &mut stopping).await
                && phase == Phase::Serving
            {
                phase = start_draining(conn, "server shutting down");
            }
            reading_since = Instant::now();
            continue;
        }
        // A whole frame is already here: take it without the timers and signals below (and
        // without an await). Otherwise the answers so far go out before waiting for more.
        let received = if let Some(received) = reader.try_recv() {
            received.map(Some)
        } else {
            if flush(writer, &mut held, &mut unflushed).await.is_err() {
                return (ReadEnd::CallerGone, Some(reader));
            }
            // Until a frame (or anything else) comes, an answer given alone is written by
            // its handler's task: none of ours would go out with it.
            let _waiting = ReadSideWaiting::new(conn);
            tokio::select! {
                biased;
                received = reader.recv() => received,
                () = &mut stop, if !stopping => {
                    stopping = true;
                    if phase == Phase::Serving {
                        (phase, reading_since) =
                            (start_draining(conn, "server shutting down"), Instant::now());
                    }
                    continue;
                }
                () = &mut idle, if phase == Phase::Serving => {
                    (phase, reading_since) = (start_draining(conn, "idle"), Instant::now());
                    continue;
                }
                () = &mut drain_timer, if phase == Phase::Draining => {
                    // The timer is moved lazily: it fires, and only then is the real deadline
                    // (which moves with every read) looked at.
                    let deadline = conn.reads.last().max(reading_since) + config.drain_timeout;
                    if Instant::now() < deadline {
                        drain_timer.as_mut().reset(deadline);
                        continue;
                    }
                    go_away(conn, "caller silent after go-away", last_accepted);
                    if flush(writer, &mut held, &mut unflushed).await.is_err() {
                        return (ReadEnd::CallerGone, Some(reader));
                    }
                    return (ReadEnd::StoppedReading, Some(reader));
                }
            }
        };
        let frame = match received {
            Ok(Some(frame)) => frame,
            Ok(None) if phase == Phase::Draining => return (ReadEnd::CallerClosed, Some(reader)),
            Ok(None) => return (ReadEnd::CallerGone, Some(reader)),
            Err(error) => {
                tracing::warn!(peer = %conn.peer, reason = %error, "closing connection");
                return (ReadEnd::CallerGone, Some(reader));
            }
        };
        let wrote = match frame.request() {
            Some(RequestHead { id, timeout_us, stream_credit }) if H::RESPONDS => {
                last_accepted = last_accepted.max(id);
                let deadline = deadline_after(timeout_us);
                let (header, payloads) = frame.into_parts();
                let request = Message { header, payloads };
                respond(&**handler, conn, id, request, deadline, stream_credit);
                Ok(false)
            }
            // A handler that answers by `call` answers a stream request with one final answer.
            Some(RequestHead { id, timeout_us, .. }) => {
                last_accepted = last_accepted.max(id);
                let (header, payloads) = frame.into_parts();
                let request = Message { header, payloads };
                let bytes = message_bytes(&request);
                let own = own_handler.take().unwrap_or_else(|| handler.clone());
                let mut call = refill(&mut spare, request_future(own, request));
                match poll_once(&mut call).await {
                    Poll::Ready(handled) => {
                        spare = Some(call);
                        let answer = handled.map(|(answer, own)| {
                            own_handler = Some(own);
                            answer
                        });
                        let answer = reply(conn, id, answer);
                        match answer_at_once(conn, writer, &mut held, id, answer) {
                            WriteAtOnce::Done(wrote) => wrote,
                            WriteAtOnce::Wait(mut writer, answer) => {
                                writer.feed(answer).await.map(|()| true).map_err(drop)
                            }
                        }
                    }
                    Poll::Pending => {
                        spawn_request(conn, id, call, bytes, deadline_after(timeout_us));
                        Ok(false)
                    }
                }
            }
            None => {
                // `handle_frame` may take the writer (a pong) and wait.
                held = None;
                handle_frame(conn, frame, writer, handler).await
            }
        };
        match wrote {
            Ok(true) => {
                unflushed += 1;
                if conn.caller_elsewhere
                    && unflushed >= ANSWERS_PER_FLUSH
                    && flush(writer, &mut held, &mut unflushed).await.is_err()
                {
                    return (ReadEnd::CallerGone, Some(reader));
                }
            }
            Ok(false) => {}
            Err(()) => return (ReadEnd::CallerGone, Some(reader)),
        }
    }
}

/// Answers the read side writes inline before it flushes them, even with more requests
/// already read, for a caller in another process: that caller starts on them while the rest
/// are made, and the two processes work at once instead of taking turns (a batch answered in
/// one write at its end leaves the caller idle until then, and the server idle while the caller
/// works). Within one process the caller cannot start before the read side yields, so there the
/// run goes out in one write. Measured on two cores, 64 pool calls in flight to a child process
/// over TCP: 0.49–0.70 million calls a second answered in one write, 0.75–1.23 in parts of 16
/// (docs/architecture.md, "Answers in parts").
const ANSWERS_PER_FLUSH: u32 = 16;

/// Flushes what the read side wrote inline, if anything, with the writer it holds (else
/// taking it); the writer goes back to its slot either way. `Err` when the connection broke.
async fn flush<'a>(
    writer: &'a SharedWriter,
    held: &mut Option<TakenWriter<'a>>,
    unflushed: &mut u32,
) -> Result<(), ()> {
    let held = held.take();
    if std::mem::take(unflushed) == 0 {
        return Ok(());
    }
    let mut taken = match held {
        Some(taken) => taken,
        None => writer.take().await,
    };
    taken.flush().await.map_err(drop)
}

/// Sends the first go-away (`u64::MAX`: still accepting); the read side then drains.
fn start_draining(conn: &ServerConn, reason: &'static str) -> Phase {
    go_away(conn, reason, u64::MAX);
    Phase::Draining
}

/// Puts `fresh` into the spare box if there is one (no allocation), else into a new box.
fn refill<F>(spare: &mut Option<Pin<Box<F>>>, fresh: F) -> Pin<Box<F>> {
    match spare.take() {
        Some(mut emptied) => {
            emptied.as_mut().set(fresh);
            emptied
        }
        None => Box::pin(fresh),
    }
}

/// Handles a frame other than a request. `Ok(true)` when it wrote something that still needs
/// a flush.
async fn handle_frame<H: Handler>(
    conn: &Arc<ServerConn>,
    frame: ReceivedFrame,
    writer: &SharedWriter,
    handler: &Arc<H>,
) -> Result<bool, ()> {
    if frame.kind() == FrameKind::Notify {
        let (header, payloads) = frame.into_parts();
        run_notify(conn, handler, Message { header, payloads }).await;
        return Ok(false);
    }
    match frame.into_frame().envelope {
        Envelope::Cancel(pb::Cancel { id, answer: false }) => {
            conn.cancel(id);
            Ok(false)
        }
        Envelope::Cancel(pb::Cancel { id, answer: true }) => {
            conn.cancel_answering(id);
            Ok(false)
        }
        Envelope::Credit(pb::Credit { id, items }) => {
            conn.add_credit(id, items);
            Ok(false)
        }
        Envelope::Ping(pb::Ping { nonce }) => {
            let pong = Frame::new(Envelope::Pong(pb::Pong { nonce }), vec![]);
            write_now(conn, writer, pong, true).await
        }
        other => {
            tracing::debug!(peer = %conn.peer, kind = ?other.kind(), "ignoring a frame a caller should not send");
            Ok(false)
        }
    }
}

/// Writes a frame from the read side (without flushing) when the writer is free, else queues
/// it for the write side. `Ok(true)` when written and needing a flush; `Err` when the
/// connection broke.
async fn write_now(
    conn: &ServerConn,
    writer: &SharedWriter,
    frame: Frame,
    control: bool,
) -> Result<bool, ()> {
    match write_at_once(conn, writer, frame, control) {
        WriteAtOnce::Done(wrote) => wrote,
        WriteAtOnce::Wait(mut writer, frame) => {
            writer.feed(frame).await.map(|()| true).map_err(drop)
        }
    }
}

/// What [`write_at_once`] did.
enum WriteAtOnce<'a> {
    /// Written (`true`: needs a flush), queued for the write side (`false`), or `Err`: the
    /// connection broke.
    Done(Result<bool, ()>),
    /// The writer's queue is full: this writer has to feed the frame, waiting.
    Wait(TakenWriter<'a>, Frame),
}

/// The read side's answer to request `id`, written without an await when the writer's
/// queue takes it at once (nearly always). An answer over the frame limits is refused by the
/// encoder with nothing queued, and the `TOO_LARGE` answer goes in its place: checked there,
/// not before, so that a fitting answer is measured once (the write side does the same for
/// answers queued for it). One given back at the high-water mark is checked first: the
/// read side's own `feed` of it must not fail.
fn answer_at_once<'a>(
    conn: &ServerConn,
    writer: &'a SharedWriter,
    held: &mut Option<TakenWriter<'a>>,
    id: u64,
    answer: Frame,
) -> WriteAtOnce<'a> {
    let Some(mut writer) = held.take().or_else(|| writer.try_take()) else {
        // The write side answers TOO_LARGE for it if the encoder refuses it.
        conn.queue(answer, false);
        return WriteAtOnce::Done(Ok(false));
    };
    let too_large = match writer.try_feed(answer) {
        Ok(None) => {
            *held = Some(writer);
            return WriteAtOnce::Done(Ok(true));
        }
        Ok(Some(answer)) => return WriteAtOnce::Wait(writer, conn.within_limits(id, answer)),
        Err(TransportError::Protocol { source, .. }) => conn.too_large(id, &source),
        Err(_) => return WriteAtOnce::Done(Err(())),
    };
    match writer.try_feed(too_large) {
        Ok(None) => WriteAtOnce::Done(Ok(true)),
        Ok(Some(too_large)) => WriteAtOnce::Wait(writer, too_large),
        Err(_) => WriteAtOnce::Done(Err(())),
    }
}

/// [`write_now`] without an await: the writer's queue takes the frame at once, nearly
/// always.
fn write_at_once<'a>(
    conn: &ServerConn,
    writer: &'a SharedWriter,
    frame: Frame,
    control: bool,
) -> WriteAtOnce<'a> {
    let Some(mut writer) = writer.try_take() else {
        conn.queue(frame, control);
        return WriteAtOnce::Done(Ok(false));
    };
    match writer.try_feed(frame) {
        Ok(None) => WriteAtOnce::Done(Ok(true)),
        Ok(Some(frame)) => WriteAtOnce::Wait(writer, frame),
        Err(_) => WriteAtOnce::Done(Err(())),
    }
}

/// Feeds `frame` to `writer`, without an await when its queue takes it at once.
async fn feed(writer: &mut FrameWriter, frame: Frame) -> Result<(), TransportError> {
    match writer.try_feed(frame)? {
        None => Ok(()),
        Some(frame) => writer.feed(frame).await,
    }
}

/// Queues a go-away naming `last_accepted`.
fn go_away(conn: &ServerConn, reason: &'static str, last_accepted: u64) {
    tracing::debug!(peer = %conn.peer, reason, last_accepted, "going away");
    let go_away = pb::GoAway { last_accepted_id: last_accepted, reason: reason.into() };
    conn.queue(Frame::new(Envelope::GoAway(go_away), vec![]), true);
}

/// Waits, reading nothing, until the connection is under its limits again. Meanwhile the
/// caller's pings cannot be read, so a keep-alive goes out every `keepalive_interval`. Returns
/// true if a shutdown was asked for meanwhile (the caller then goes away).
async fn wait_for_room(
    conn: &ServerConn,
    mut stop: std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    stopping: &mut bool,
) -> bool {
    let mut next_keepalive = Instant::now() + conn.config.keepalive_interval;
    let mut stop_asked = false;
    conn.set_paused(true);
    loop {
        let progress = conn.progress.notified();
        let mut progress = pin!(progress);
        progress.as_mut().enable();
        // Looked at after `paused` is set and the wake-up is registered: a release in
        // between is not missed.
        if conn.has_room() {
            conn.set_paused(false);
            return stop_asked;
        }
        tokio::select! {
            () = progress => {}
            () = sleep_until(next_keepalive) => {
                conn.queue(keepalive(), true);
                next_keepalive = Instant::now() + conn.config.keepalive_interval;
            }
            () = &mut stop, if !*stopping => {
                *stopping = true;
                stop_asked = true;
            }
        }
    }
}

/// Completes once the connection has had nothing in flight and received nothing for
/// `timeout`; never if `timeout` is `None`.
///
/// One timer for the connection's life, moved lazily: it is set to a time the connection may
/// be idle by at the earliest, and only when it fires is the real state looked at. Calls
/// neither move it nor wake this watch: remaking a timer and a wait for the end of the load
/// each time the connection went quiet cost the server about 1,400 instructions per actor
/// call made one at a time (callgrind).
async fn idle(conn: &ServerConn, timeout: Option<Duration>) {
    let Some(timeout) = timeout else { return std::future::pending().await };
    let mut timer = pin!(sleep_until(conn.reads.last() + timeout));
    loop {
        timer.as_mut().await;
        // Busy: idle at the earliest when the load ends (at once if nothing was read since).
        until_progress(conn, ServerConn::is_quiet).await;
        // Reads only move the deadline later, so the timer never fires after it.
        let deadline = conn.reads.last() + timeout;
        if Instant::now() >= deadline {
            return;
        }
        timer.as_mut().reset(deadline);
    }
}

/// Writes queued frames, control frames first; closes (FIN) once the connection is closing
/// and everything accepted is answered. `Err` when a write failed.
async fn write_side(conn: &ServerConn, writer: &SharedWriter) -> Result<(), ()> {
    let (mut batch, mut encoded) = (Vec::new(), WriteBuf::new());
    loop {
        let bytes = conn.take_batch(&mut batch, &mut encoded);
        if batch.is_empty() && encoded.is_empty() {
            // An answer written from a handler's task left bytes queued in the writer.
            if conn.take_unflushed() {
                if let Err(error) = writer.take().await.flush().await {
                    tracing::debug!(peer = %conn.peer, %error, "write failed");
                    return Err(());
                }
                continue;
            }
            if conn.should_close() {
                return writer.take().await.close().await.map_err(|error| {
                    tracing::debug!(peer = %conn.peer, %error, "close failed");
                });
            }
            // A signal keeps a permit, so a frame queued since the look still wakes us.
            if conn.is_closing() {
                // Reading is over, so the caller's pings go unread while handlers finish:
                // keep its heartbeat fed.
                tokio::select! {
                    () = conn.wake_writer.notified() => {}
                    () = sleep(conn.config.keepalive_interval) => conn.queue(keepalive(), true),
                }
            } else {
                conn.wake_writer.notified().await;
            }
            continue;
        }
        let mut writer = writer.take().await;
        for frame in batch.drain(..) {
            // An answer over the frame limits is refused by the encoder with nothing queued:
            // its TOO_LARGE answer goes instead, failing that request alone.
            let answer_to = match &frame.envelope {
                Envelope::Response(response) => Some(response.id),
                _ => None,
            };
            // `feed` spelled out rather than called: awaiting the helper's future on this path
            // (every answer an actor sends) cost about 100 instructions per call.
            let fed = match writer.try_feed(frame) {
                Ok(None) => Ok(()),
                Ok(Some(frame)) => writer.feed(frame).await,
                Err(error) => Err(error),
            };
            let fed = match (fed, answer_to) {
                (Err(TransportError::Protocol { source, .. }), Some(id)) => {
                    feed(&mut writer, conn.too_large(id, &source)).await
                }
                (fed, _) => fed,
            };
            if let Err(error) = fed {
                tracing::debug!(peer = %conn.peer, %error, "write failed");
                return Err(());
            }
        }
        // Answers encoded as they were queued (over a byte stream), after the frames above.
        if !encoded.is_empty() {
            let fed = match writer.try_feed_encoded(&mut encoded) {
                Ok(true) => Ok(()),
                Ok(false) => writer.feed_encoded(&mut encoded).await,
                Err(error) => Err(error),
            };
            if let Err(error) = fed {
                tracing::debug!(peer = %conn.peer, %error, "write failed");
                return Err(());
            }
        }
        if let Err(error) = writer.flush().await {
            tracing::debug!(peer = %conn.peer, %error, "write failed");
            return Err(());
        }
        drop(writer);
        conn.written(bytes);
    }
}
