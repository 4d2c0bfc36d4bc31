//! Runs in parts: a server writes a long run of answers in parts to a caller in another
//! process, which can start on the first answers while the rest are made, and a caller takes a
//! long run of answers from a server in another process in parts, sending the requests the
//! first ones prompted before it takes the rest; within one process, neither splits. The peers
//! are raw ones speaking the protocol, whose `Hello` says which process they are in (a mark of
//! their own, or ours echoed). The side under test may block its thread, so the raw peer runs
//! on a thread of its own.

mod common;

use std::sync::{Mutex, mpsc};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use xoscar_pool::{Handler, Message, ServerConfig};
use xoscar_testkit::raw_caller;
use xoscar_transport::Address;
use xoscar_wire::{Envelope, Frame, FrameDecoder, FrameEncoder, Handshake, Limits, WriteBuf, pb};

/// Requests sent in one write; the last one holds the server.
const RUN: u64 = 20;

/// Answers the caller must have read before it releases the held request: the server flushes a
/// run in parts of 16 to a caller in another process.
const READ_BEFORE_RELEASE: usize = 16;

/// Answers every request at once with its own header, but the one whose header is `hold`: it
/// blocks the server's thread until released or `hold_for` passes, and answers which.
struct HoldsOne {
    released: Mutex<mpsc::Receiver<()>>,
    hold_for: Duration,
}

impl Handler for HoldsOne {
    async fn call(&self, request: Message) -> Message {
        if request.header.as_ref() != b"hold" {
            return request;
        }
        let answer = match self.released.lock().unwrap().recv_timeout(self.hold_for) {
            Ok(()) => "released",
            Err(_) => "held to the end",
        };
        Message::new(Bytes::from_static(answer.as_bytes()), vec![])
    }
}

/// Serves a [`HoldsOne`] on `address` from a thread and runtime of its own, for the life of
/// the test binary; its address and the sender that releases the held request.
fn serve_holding(address: Address, hold_for: Duration) -> (Address, mpsc::Sender<()>) {
    let (release, released) = mpsc::channel();
    let handler = HoldsOne { released: Mutex::new(released), hold_for };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let server = common::start(&address, handler, ServerConfig::default()).await;
            tx.send(server.local_addr().clone()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    (rx.recv().unwrap(), release)
}

trait Raw: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Raw for T {}

async fn raw_dial(address: &Address) -> Box<dyn Raw> {
    match address {
        Address::Tcp { .. } => {
            Box::new(tokio::net::TcpStream::connect(address.to_string()).await.unwrap())
        }
        Address::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await.unwrap()),
        other => panic!("no raw dial for {other}"),
    }
}

/// As a raw caller whose `Hello` carries `mark(the server's mark)`: sends [`RUN`] requests in
/// one write (the last one held), releases the held one once [`READ_BEFORE_RELEASE`] answers
/// came, and returns the held request's answer once every answer came.
async fn run_of_requests(
    address: &Address,
    mark: impl FnOnce(u64) -> u64,
    release: &mpsc::Sender<()>,
) -> Bytes {
    let requests = (1..=RUN)
        .map(|id| {
            let header = if id == RUN { "hold" } else { "echo" };
            Frame::request(id, Bytes::from_static(header.as_bytes()), vec![])
        })
        .collect();
    let answers = raw_caller::run_of_requests(&mut raw_dial(address).await, mark, requests, |n| {
        // The server may be gone on to the held request already, or not yet: either way it
        // is free to finish now.
        if n == READ_BEFORE_RELEASE {
            let _ = release.send(());
        }
    })
    .await;
    raw_caller::answer_to(&answers, RUN).0.header.clone()
}

fn socket_addresses() -> Vec<Address> {
    common::addresses().into_iter().filter(|a| !matches!(a, Address::Inproc(_))).collect()
}

#[test]
fn a_caller_in_another_process_gets_a_long_run_of_answers_in_parts() {
    common::run(async {
        for address in socket_addresses() {
            // Held long enough to fail the test, well inside its outer timeout: answered in
            // one write, the first answers would only come once the hold ran out.
            let (server, release) = serve_holding(address.clone(), Duration::from_secs(10));
            let other_process = |server_mark: u64| server_mark.wrapping_add(1);
            let held = run_of_requests(&server, other_process, &release).await;
            assert_eq!(held, "released", "{address}: the first answers came before the last");
        }
    });
}

#[test]
fn a_caller_in_this_process_gets_a_run_of_answers_in_one_write() {
    common::run(async {
        for address in socket_addresses() {
            // In parts, the first answers would come at once and release the hold; in one
            // write, none comes before the hold runs out.
            let (server, release) = serve_holding(address.clone(), Duration::from_millis(300));
            let this_process = |server_mark: u64| server_mark;
            let held = run_of_requests(&server, this_process, &release).await;
            assert_eq!(held, "held to the end", "{address}: no answer came before the last");
        }
    });
}

// ---- the caller's side ----------------------------------------------------------------------

/// Calls made at once; their answers come back in one write.
const CALLERS: usize = 32;

/// Which answer's caller holds its thread until the raw server has read
/// [`READ_BEFORE_RELEASE`] of the requests the earlier answers prompted.
const HOLDING_CALLER: usize = 17;

/// A raw server on a thread of its own, speaking the protocol over TCP: its `Hello` carries
/// `mark(the caller's mark)`. It reads [`CALLERS`] requests, answers them all in one write, then
/// answers each request as it comes, and sends on `seen` once [`READ_BEFORE_RELEASE`] of those
/// came. Returns its address.
fn raw_server(mark: fn(u64) -> u64, seen: mpsc::Sender<()>) -> Address {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string().parse().unwrap();
    std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        socket.set_nodelay(true).unwrap();
        let mut read = BytesMut::new();
        let fill = |socket: &mut std::net::TcpStream, read: &mut BytesMut| {
            let mut chunk = [0; 4096];
            let n = socket.read(&mut chunk).unwrap();
            read.extend_from_slice(&chunk[..n]);
            n > 0
        };
        let theirs = loop {
            if let Some(theirs) = Handshake::decode(&mut read, &Limits::default()).unwrap() {
                break theirs;
            }
            assert!(fill(&mut socket, &mut read), "the caller's handshake");
        };
        let mut ours = BytesMut::new();
        let hello = pb::Hello { process: mark(theirs.hello.process), ..Default::default() };
        Handshake::new(hello).encode(&mut ours);
        socket.write_all(&ours).unwrap();

        let (decoder, encoder) = (&mut FrameDecoder::default(), FrameEncoder::default());
        let (mut first_run, mut after) = (Some(Vec::new()), 0);
        loop {
            let mut out = WriteBuf::new();
            while let Some(frame) = decoder.decode(&mut read).unwrap() {
                let Envelope::Request(request) = frame.envelope else { continue };
                let answer = Frame::response(request.id, Bytes::new(), vec![]);
                if let Some(run) = &mut first_run {
                    run.push(answer);
                    if run.len() == CALLERS {
                        // The whole first run in one write.
                        for answer in first_run.take().into_iter().flatten() {
                            encoder.encode(answer, &mut out).unwrap();
                        }
                    }
                    continue;
                }
                after += 1;
                if after == READ_BEFORE_RELEASE {
                    let _ = seen.send(());
                }
                encoder.encode(answer, &mut out).unwrap();
            }
            while bytes::Buf::has_remaining(&out) {
                let chunk = bytes::Buf::chunk(&out);
                let n = socket.write(chunk).unwrap();
                bytes::Buf::advance(&mut out, n);
            }
            if !fill(&mut socket, &mut read) {
                return;
            }
        }
    });
    address
}

/// [`CALLERS`] calls at once to a [`raw_server`] whose `Hello` carries `mark`; each caller calls
/// again once answered, the [`HOLDING_CALLER`]th to be answered only after holding its thread
/// until the server read [`READ_BEFORE_RELEASE`] second calls or `hold_for` passed. Returns
/// whether the hold was released.
fn calls_in_a_run(mark: fn(u64) -> u64, hold_for: Duration) -> bool {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (seen, released) = mpsc::channel();
    let address = raw_server(mark, seen);
    let released = Arc::new(Mutex::new(released));
    common::run(async move {
        let pool = xoscar_pool::Pool::new(xoscar_pool::PoolConfig::default()).unwrap();
        let (answered, was_released) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(None)));
        let callers: Vec<_> = (0..CALLERS)
            .map(|_| {
                let (pool, address, answered) = (pool.clone(), address.clone(), answered.clone());
                let (released, was_released) = (released.clone(), was_released.clone());
                tokio::spawn(async move {
                    let call = || Message::new(Bytes::from_static(b"call"), vec![]);
                    pool.call(&address, call()).await.unwrap();
                    if answered.fetch_add(1, Ordering::SeqCst) + 1 == HOLDING_CALLER {
                        // Blocks the caller's thread: only what went out before now can reach
                        // the server meanwhile.
                        let outcome = released.lock().unwrap().recv_timeout(hold_for);
                        *was_released.lock().unwrap() = Some(outcome.is_ok());
                    }
                    pool.call(&address, call()).await.unwrap();
                })
            })
            .collect();
        for caller in callers {
            caller.await.unwrap();
        }
        let outcome = *was_released.lock().unwrap();
        outcome.expect("the holding caller was answered")
    })
}

#[test]
fn a_caller_sends_what_a_long_run_of_answers_from_another_process_prompted_in_parts() {
    // Held long enough to fail the test, well inside its outer timeout: taken whole, the run
    // would wake every caller before the requests of the first went out.
    let released =
        calls_in_a_run(|caller_mark| caller_mark.wrapping_add(1), Duration::from_secs(10));
    assert!(released, "the first answers' requests went out before the rest were taken");
}

#[test]
fn a_caller_takes_a_run_of_answers_from_its_own_process_whole() {
    // In parts, the first requests would go out at once and release the hold.
    let released = calls_in_a_run(|caller_mark| caller_mark, Duration::from_millis(300));
    assert!(!released, "no request went out before the whole run was taken");
}
