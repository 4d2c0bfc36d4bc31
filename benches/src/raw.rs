//! Raw ping-pong clients of every transport: the limit a sequential round trip is compared
//! with. Each starts its echo server on the current runtime.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::BufReader;
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::mpsc;
use xoscar_transport::Address;
use xoscar_wire::Frame;

use crate::{address, raw_echo, raw_round_trip, request};

/// A client of a raw echo server: `[u32 len][body]` over a socket, or `Frame`s over mpsc.
pub enum RawPingPong {
    /// A plain TCP socket with `TCP_NODELAY`.
    Tcp(BufReader<TcpStream>),
    /// A plain Unix socket.
    Unix(BufReader<UnixStream>),
    /// Two mpsc queues around an echo task.
    Inproc(mpsc::Sender<Frame>, mpsc::Receiver<Frame>),
}

impl RawPingPong {
    /// Starts the echo server of `transport` ("tcp", "uds", "inproc") and connects to it.
    pub async fn start(transport: &str, tag: &str) -> RawPingPong {
        match transport {
            "tcp" => {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let local = listener.local_addr().unwrap();
                tokio::spawn(async move {
                    while let Ok((stream, _)) = listener.accept().await {
                        stream.set_nodelay(true).unwrap();
                        tokio::spawn(raw_echo(stream));
                    }
                });
                let stream = TcpStream::connect(local).await.unwrap();
                stream.set_nodelay(true).unwrap();
                RawPingPong::Tcp(BufReader::new(stream))
            }
            "uds" => {
                let Address::Unix(path) = address("uds", tag) else { unreachable!() };
                let _ = std::fs::remove_file(&path);
                let listener = UnixListener::bind(&path).unwrap();
                tokio::spawn(async move {
                    while let Ok((stream, _)) = listener.accept().await {
                        tokio::spawn(raw_echo(stream));
                    }
                });
                RawPingPong::Unix(BufReader::new(UnixStream::connect(&path).await.unwrap()))
            }
            _ => {
                let (to_server, mut server_rx) = mpsc::channel::<Frame>(128);
                let (server_tx, from_server) = mpsc::channel::<Frame>(128);
                tokio::spawn(async move {
                    while let Some(frame) = server_rx.recv().await {
                        if server_tx.send(frame).await.is_err() {
                            return;
                        }
                    }
                });
                RawPingPong::Inproc(to_server, from_server)
            }
        }
    }

    /// Connects to a raw echo server that is already running (tcp or unix).
    pub async fn connect(address: &Address) -> RawPingPong {
        match address {
            Address::Unix(path) => {
                RawPingPong::Unix(BufReader::new(UnixStream::connect(path).await.unwrap()))
            }
            other => {
                let stream = TcpStream::connect(other.to_string()).await.unwrap();
                stream.set_nodelay(true).unwrap();
                RawPingPong::Tcp(BufReader::new(stream))
            }
        }
    }

    /// Times `iters` sequential round trips of `payload`.
    pub async fn time_round_trips(&mut self, iters: u64, payload: &Bytes) -> Duration {
        let message = crate::mux::frame(payload);
        let mut reply = vec![0u8; payload.len()];
        let start = Instant::now();
        for id in 0..iters {
            self.round_trip(id, &message, payload, &mut reply).await;
        }
        start.elapsed()
    }

    /// One round trip of `payload` (a prebuilt `[u32 len][body]` message for sockets).
    pub async fn round_trip(&mut self, id: u64, message: &[u8], payload: &Bytes, reply: &mut [u8]) {
        match self {
            RawPingPong::Tcp(stream) => raw_round_trip(stream, message, reply).await.unwrap(),
            RawPingPong::Unix(stream) => raw_round_trip(stream, message, reply).await.unwrap(),
            RawPingPong::Inproc(to, from) => {
                to.send(request(id, payload)).await.unwrap();
                from.recv().await.unwrap();
            }
        }
    }
}

/// A client of a raw one-way transfer sink ([`crate::raw_transfer_sink`]) in another process.
pub enum RawSink {
    /// Over TCP, with `TCP_NODELAY`.
    Tcp(TcpStream),
    /// Over a Unix socket.
    Unix(UnixStream),
}

impl RawSink {
    /// Connects to the sink at `address`.
    pub async fn connect(address: &Address) -> RawSink {
        match address {
            Address::Unix(path) => RawSink::Unix(UnixStream::connect(path).await.unwrap()),
            other => {
                let stream = TcpStream::connect(other.to_string()).await.unwrap();
                stream.set_nodelay(true).unwrap();
                RawSink::Tcp(stream)
            }
        }
    }

    /// Sends `payload` and waits until the sink has all of it.
    pub async fn send(&mut self, payload: &[u8]) {
        match self {
            RawSink::Tcp(stream) => crate::raw_transfer_send(stream, payload).await.unwrap(),
            RawSink::Unix(stream) => crate::raw_transfer_send(stream, payload).await.unwrap(),
        }
    }
}
