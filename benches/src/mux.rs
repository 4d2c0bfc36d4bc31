//! The raw multiplexed limit: a plain tokio connection with a writer task and a reader task
//! that dispatches replies by request id (messages are `[u32 len][u64 id][body]`), or the
//! same shape over tokio mpsc for in-process.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, oneshot};
use xoscar_transport::Address;

type Waiters = Arc<Mutex<HashMap<u64, oneshot::Sender<Bytes>>>>;

/// A raw multiplexed client.
#[derive(Clone)]
pub struct RawMux {
    requests: mpsc::UnboundedSender<(u64, Bytes)>,
    waiters: Waiters,
}

impl RawMux {
    /// Over the owned halves of a socket whose peer echoes `[u32 len][body]` messages
    /// ([`crate::raw_echo`]). (Not `tokio::io::split`: its halves contend for one lock.)
    pub fn over_socket<R, W>(read: R, write: W) -> RawMux
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let (requests, mut queue) = mpsc::unbounded_channel::<(u64, Bytes)>();
        let waiters: Waiters = Arc::default();
        tokio::spawn(async move {
            let mut write = BufWriter::new(write);
            while let Some(first) = queue.recv().await {
                let mut next = Some(first);
                while let Some((id, body)) = next {
                    write.write_u32_le(8 + body.len() as u32).await?;
                    write.write_u64_le(id).await?;
                    write.write_all(&body).await?;
                    next = queue.try_recv().ok();
                }
                write.flush().await?;
            }
            Ok::<_, std::io::Error>(())
        });
        let dispatch = waiters.clone();
        tokio::spawn(async move {
            let mut read = BufReader::new(read);
            loop {
                let len = read.read_u32_le().await? as usize;
                let mut body = BytesMut::zeroed(len);
                read.read_exact(&mut body).await?;
                let id = body.get_u64_le();
                if let Some(waiter) = dispatch.lock().remove(&id) {
                    let _ = waiter.send(body.freeze());
                }
            }
            #[allow(unreachable_code)]
            Ok::<_, std::io::Error>(())
        });
        RawMux { requests, waiters }
    }

    /// Starts a batching raw echo server of `transport` ("tcp", "uds", "inproc") on the current
    /// runtime and connects to it.
    pub async fn start(transport: &str, tag: &str) -> RawMux {
        match transport {
            "tcp" | "uds" => RawMux::connect(&crate::serve_raw_echo(transport, tag).await).await,
            _ => RawMux::in_process(),
        }
    }

    /// Connects to a running batching raw echo server (tcp or unix).
    pub async fn connect(address: &Address) -> RawMux {
        match address {
            Address::Unix(path) => {
                let (read, write) =
                    tokio::net::UnixStream::connect(path).await.unwrap().into_split();
                RawMux::over_socket(read, write)
            }
            other => {
                let stream = tokio::net::TcpStream::connect(other.to_string()).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (read, write) = stream.into_split();
                RawMux::over_socket(read, write)
            }
        }
    }

    /// In-process: an echo task between two mpsc queues, replies dispatched by id.
    pub fn in_process() -> RawMux {
        let (requests, mut queue) = mpsc::unbounded_channel::<(u64, Bytes)>();
        let (replies, mut incoming) = mpsc::unbounded_channel::<(u64, Bytes)>();
        tokio::spawn(async move {
            while let Some(message) = queue.recv().await {
                if replies.send(message).is_err() {
                    return;
                }
            }
        });
        let waiters: Waiters = Arc::default();
        let dispatch = waiters.clone();
        tokio::spawn(async move {
            while let Some((id, body)) = incoming.recv().await {
                if let Some(waiter) = dispatch.lock().remove(&id) {
                    let _ = waiter.send(body);
                }
            }
        });
        RawMux { requests, waiters }
    }

    /// One call: registers the id, queues the request, waits for the reply.
    pub async fn call(&self, id: u64, body: Bytes) -> Bytes {
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().insert(id, tx);
        self.requests.send((id, body)).expect("mux writer alive");
        rx.await.expect("mux reply")
    }
}

/// `[u32 len][body]` framing of one message, for a raw echo client.
pub fn frame(body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + body.len());
    out.put_u32_le(body.len() as u32);
    out.put_slice(body);
    out.freeze()
}
