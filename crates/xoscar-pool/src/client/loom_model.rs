//! Model checks of the caller-side connection state with loom: every interleaving of callers,
//! the writer, the reaper, a go-away and the end of a connection is explored (up to loom's
//! preemption bound), the way tokio checks its own primitives.
//!
//! Run with `cargo xtask loom`, i.e.
//! `RUSTFLAGS="--cfg xoscar_loom" cargo test -p xoscar-pool --lib --release loom_model`.
//! Each model drives the real `Conn` (its lock is loom's under this cfg) from loom threads.

use std::sync::Arc as StdArc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::FutureExt;
use loom::sync::Arc;
use loom::thread;
use tokio::sync::oneshot;
use tokio::time::Instant;
use xoscar_wire::{Envelope, Frame, FrameDecoder, FrameEncoder, pb};

use super::conn::{Conn, Next, Taken};
use super::state::{Ending, Outcome, Sent};

/// How the connection's writer takes frames: as values (in-process) or encoded (a byte
/// stream). The models of queueing run in both.
const WRITERS: [Option<fn() -> FrameEncoder>; 2] = [None, Some(FrameEncoder::default)];

fn conn() -> StdArc<Conn> {
    conn_with(None)
}

fn conn_with(encoder: Option<fn() -> FrameEncoder>) -> StdArc<Conn> {
    let endpoint = xoscar_transport::Address::inproc("loom");
    StdArc::new(Conn::new(endpoint, StdArc::default(), usize::MAX, encoder.map(|make| make())))
}

/// What the writer took in `taken`, emptying it: the frames as they would be written (encoded
/// ones decoded back), the bytes they count against the queue bound, their one-way senders.
fn frames_of(taken: &mut Taken) -> (Vec<Frame>, usize, Vec<oneshot::Sender<Sent>>) {
    let (mut frames, mut bytes, mut senders) = (Vec::new(), 0, Vec::new());
    for outgoing in taken.frames.drain(..) {
        bytes += outgoing.bytes;
        senders.extend(outgoing.sent);
        frames.push(outgoing.frame);
    }
    let mut encoded = std::mem::take(&mut taken.encoded);
    bytes += encoded.counted;
    senders.append(&mut encoded.senders);
    let mut wire = BytesMut::new();
    while encoded.bytes.has_remaining() {
        let n = encoded.bytes.chunk().len();
        wire.extend_from_slice(encoded.bytes.chunk());
        encoded.bytes.advance(n);
    }
    let mut decoder = FrameDecoder::default();
    while let Some(frame) = decoder.decode(&mut wire).expect("whole frames") {
        frames.push(frame);
    }
    assert!(wire.is_empty(), "whole frames only");
    (frames, bytes, senders)
}

fn request() -> Frame {
    Frame::request(0, Bytes::from_static(b"r"), vec![])
}

/// Queues a request. Never waits (the queue bound is unlimited here), so one poll does it.
fn queue(conn: &Conn) -> Option<u64> {
    conn.queue_call(&request()).now_or_never().expect("no wait for room").expect("within limits")
}

/// The outcome in call `id`'s slot, if it is in (taking it).
fn take_outcome(conn: &Conn, id: u64) -> Option<Outcome> {
    let mut cx = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
    match conn.poll_outcome(id, &mut cx) {
        std::task::Poll::Ready(outcome) => outcome,
        std::task::Poll::Pending => None,
    }
}

/// The request ids among `frames`, and the ids of cancels.
fn ids(frames: &[Frame]) -> (Vec<u64>, Vec<u64>) {
    let mut requests = Vec::new();
    let mut cancels = Vec::new();
    for frame in frames {
        match &frame.envelope {
            Envelope::Request(r) => requests.push(r.id),
            Envelope::Cancel(c) => cancels.push(c.id),
            _ => {}
        }
    }
    (requests, cancels)
}

/// Takes everything the writer would write now, as the writer does.
fn drain(conn: &Conn) -> Vec<Frame> {
    let (mut out, mut taken) = (Vec::new(), Taken::default());
    while let Next::Write = conn.take_outgoing(&mut taken) {
        let (frames, bytes, _) = frames_of(&mut taken);
        conn.written(bytes, &mut Vec::new());
        out.extend(frames);
    }
    out
}

/// A lease and a reap never both win; a reaped connection takes no lease.
#[test]
fn loom_model_lease_and_reap_are_exclusive() {
    loom::model(|| {
        let conn = conn();
        let leaser = {
            let conn = conn.clone();
            thread::spawn(move || {
                conn.try_lease().map(|lease| {
                    // While the lease is held, the connection is busy.
                    assert!(conn.state().busy_since().is_some());
                    drop(lease);
                })
            })
        };
        let later = Instant::now() + Duration::from_secs(3600);
        let reaped = conn.try_reap(later, Duration::ZERO);
        let leased = leaser.join().unwrap().is_some();
        if reaped {
            assert!(conn.try_lease().is_none(), "a reaped connection gave a lease");
        }
        assert!(leased || reaped, "the lease failed only because of the reap");
        assert_eq!(conn.state().leases(), 0);
    });
}

/// Two callers race a writer and a server that goes away naming the last request it
/// received: ids reach the wire in the order given; every call gets exactly one outcome;
/// `Retry` exactly for those the server never received.
#[test]
fn loom_model_go_away_is_exact_for_racing_callers() {
    for writer in WRITERS {
        loom::model(move || go_away_is_exact_for_racing_callers(writer));
    }
}

fn go_away_is_exact_for_racing_callers(writer: Option<fn() -> FrameEncoder>) {
    let conn = conn_with(writer);
    let wire = Arc::new(loom::sync::Mutex::new(Vec::<u64>::new()));
    let callers: Vec<_> = (0..2)
        .map(|_| {
            let conn = conn.clone();
            thread::spawn(move || queue(&conn))
        })
        .collect();
    let writer = {
        let (conn, wire) = (conn.clone(), wire.clone());
        thread::spawn(move || {
            for _ in 0..2 {
                let frames = drain(&conn);
                wire.lock().unwrap().extend(ids(&frames).0);
                thread::yield_now();
            }
        })
    };
    // The server: accepts what has arrived, then goes away naming the last id.
    let last_accepted = wire.lock().unwrap().last().copied().unwrap_or(0);
    conn.go_away(last_accepted);
    writer.join().unwrap();
    conn.end(Ending::GoneAway);

    let on_wire = wire.lock().unwrap().clone();
    assert!(on_wire.windows(2).all(|w| w[0] < w[1]), "ids out of order: {on_wire:?}");
    for caller in callers {
        let Some(id) = caller.join().unwrap() else { continue };
        let outcome = take_outcome(&conn, id).expect("an outcome for every call");
        assert!(take_outcome(&conn, id).is_none(), "a second outcome for {id}");
        match outcome {
            Outcome::Retry => assert!(id > last_accepted, "{id} was accepted yet retried"),
            Outcome::Failed(_) => assert!(id <= last_accepted, "{id} never seen yet failed"),
            Outcome::Response(_) => unreachable!("nobody answers in this model"),
        }
    }
}

/// A call dropped while the writer takes requests: if its request was taken, a cancel follows
/// it; if not, the request is never written.
#[test]
fn loom_model_a_cancel_races_the_writer() {
    for writer in WRITERS {
        loom::model(move || a_cancel_races_the_writer(writer));
    }
}

fn a_cancel_races_the_writer(writer: Option<fn() -> FrameEncoder>) {
    let conn = conn_with(writer);
    let id = queue(&conn).unwrap();
    let writer = {
        let conn = conn.clone();
        thread::spawn(move || drain(&conn))
    };
    conn.cancel(id);
    let mut frames = writer.join().unwrap();
    frames.extend(drain(&conn));
    let (requests, cancels) = ids(&frames);
    assert_eq!(requests.contains(&id), cancels.contains(&id), "{requests:?} {cancels:?}");
}

/// A close asked for while the last lease is released is never missed: either the close sees
/// no lease, or the release reports that a close now waits.
#[test]
fn loom_model_a_close_waiting_for_the_last_lease_is_not_missed() {
    loom::model(|| {
        let conn = conn();
        let lease = conn.try_lease().unwrap();
        let releaser = thread::spawn(move || drop(lease));
        conn.request_close(Ending::Dropped);
        let seen_at_request = conn.state().close_ready().is_some();
        releaser.join().unwrap();
        // The driver waits on `close_requested`; a release that makes the close ready signals
        // it (a permit is stored). Either way the close is ready now.
        assert!(seen_at_request || conn.state().close_ready().is_some());
        assert!(conn.try_lease().is_none());
    });
}

/// Leases and one-way messages interleaved with a refusing go-away: a queued one-way message
/// is either written or handed back unsent, never both, never neither.
#[test]
fn loom_model_one_way_messages_are_written_or_handed_back() {
    for writer in WRITERS {
        loom::model(move || one_way_messages_are_written_or_handed_back(writer));
    }
}

fn one_way_messages_are_written_or_handed_back(writer: Option<fn() -> FrameEncoder>) {
    let conn = conn_with(writer);
    let sender = {
        let conn = conn.clone();
        thread::spawn(move || {
            let frame = Frame::new(Envelope::Notify(pb::Notify { header: Bytes::new() }), vec![]);
            conn.queue_notify(&frame).now_or_never().expect("no wait for room").unwrap()
        })
    };
    let writer = {
        let conn = conn.clone();
        thread::spawn(move || {
            let (mut written, mut taken) = (0, Taken::default());
            while let Next::Write = conn.take_outgoing(&mut taken) {
                let (_, bytes, mut senders) = frames_of(&mut taken);
                written += senders.len();
                conn.written(bytes, &mut senders);
            }
            written
        })
    };
    conn.go_away(0);
    let written = writer.join().unwrap();
    conn.end(Ending::GoneAway);
    match sender.join().unwrap() {
        None => assert_eq!(written, 0, "refused, yet written"),
        Some(mut told) => {
            let told = told.try_recv().expect("the sender is told");
            let was_written = told == super::state::Sent::Written;
            assert_eq!(was_written, written == 1);
        }
    }
}
