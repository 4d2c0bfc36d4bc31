//! How the server writes a run of answers: in parts for a caller in another process, which can
//! start on the first answers while the rest are made, and in one write for a caller in this
//! process, which cannot. The callers are raw peers speaking the protocol, whose `Hello` says
//! which process they are in (a mark of their own, or the server's echoed). The server runs on
//! a thread of its own, so that its handler may block that thread.

mod common;

use std::sync::{Mutex, mpsc};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use xoscar_pool::{Handler, Message, ServerConfig};
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
    let mut raw = raw_dial(address).await;
    let mut read = BytesMut::new();
    let theirs = loop {
        if let Some(theirs) = Handshake::decode(&mut read, &Limits::default()).unwrap() {
            break theirs;
        }
        assert!(raw.read_buf(&mut read).await.unwrap() > 0, "the server's handshake");
    };
    let hello = pb::Hello { process: mark(theirs.hello.process), ..Default::default() };
    let mut ours = BytesMut::new();
    Handshake::new(hello).encode(&mut ours);
    raw.write_all(&ours).await.unwrap();

    let (encoder, mut out) = (FrameEncoder::default(), WriteBuf::new());
    for id in 1..=RUN {
        let header = if id == RUN { "hold" } else { "echo" };
        let request = Frame::request(id, Bytes::from_static(header.as_bytes()), vec![]);
        encoder.encode(request, &mut out).unwrap();
    }
    raw.write_all_buf(&mut out).await.unwrap();

    let mut decoder = FrameDecoder::default();
    let (mut answered, mut held) = (0, None);
    while answered < RUN as usize {
        while let Some(frame) = decoder.decode(&mut read).unwrap() {
            let Envelope::Response(response) = frame.envelope else { continue };
            answered += 1;
            if answered == READ_BEFORE_RELEASE {
                // The server may be gone on to the held request already, or not yet: either
                // way it is free to finish now.
                let _ = release.send(());
            }
            if response.id == RUN {
                held = Some(response.header);
            }
        }
        if answered < RUN as usize {
            assert!(raw.read_buf(&mut read).await.unwrap() > 0, "the server closed");
        }
    }
    held.expect("the held request was answered")
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
