//! Shared pieces of the criterion benches: runtimes, our servers, and the raw limits each
//! bench is compared with (a plain tokio socket with a 4-byte length prefix, or a plain tokio
//! mpsc channel carrying the same frames).

pub mod actors;
pub mod child;
pub mod counting;
pub mod mux;
#[cfg(feature = "peers")]
pub mod peers;
pub mod raw;
pub mod wire_trip;

use std::future::Future;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::runtime::Runtime;
use xoscar_transport::{Address, Listener, TransportConfig, listen};
use xoscar_wire::{Envelope, Frame, FrameKind, pb};

/// A single-threaded runtime: on two cores it beats a multi-thread one for one busy
/// connection, since nothing crosses threads.
pub fn current_thread() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// A two-worker multi-thread runtime, to compare flavours.
pub fn multi_thread() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs a server on its own thread with its own single-threaded runtime, for the life of the
/// process (bench binaries exit when done). `serve` gets a sender for the one value the caller
/// waits for (e.g. the bound address) and sends it once it is ready.
pub fn spawn_server_thread<T, F>(
    serve: impl FnOnce(std::sync::mpsc::Sender<T>) -> F + Send + 'static,
) -> T
where
    T: Send + 'static,
    F: Future<Output = ()> + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || current_thread().block_on(serve(tx)));
    rx.recv().expect("server thread started")
}

/// A unique address of the given transport ("tcp", "uds" or "inproc").
pub fn address(transport: &str, tag: &str) -> Address {
    let pid = std::process::id();
    match transport {
        "tcp" => "127.0.0.1:0".parse().expect("address"),
        "uds" => Address::unix(std::env::temp_dir().join(format!("xoscar-bench-{pid}-{tag}.sock"))),
        "inproc" => Address::inproc(format!("bench-{pid}-{tag}")),
        other => panic!("unknown transport {other}"),
    }
}

/// Binds our listener.
pub async fn our_listener(address: &Address) -> Listener {
    listen(address, &TransportConfig::default()).await.expect("listen")
}

/// Our echo server: every frame goes straight back, connections in their own tasks.
pub async fn our_echo_server(mut listener: Listener) {
    while let Ok(incoming) = listener.accept().await {
        tokio::spawn(async move {
            let mut channel = incoming.handshake().await?;
            while let Some(frame) = channel.recv().await? {
                channel.send(frame.into_frame()).await?;
            }
            Ok::<_, xoscar_transport::TransportError>(())
        });
    }
}

/// Our sink: swallows frames, answers a `Ping` with a `Pong` (the end-of-batch marker).
pub async fn our_sink_server(mut listener: Listener) {
    while let Ok(incoming) = listener.accept().await {
        tokio::spawn(async move {
            let mut channel = incoming.handshake().await?;
            while let Some(frame) = channel.recv().await? {
                if frame.kind() != FrameKind::Ping {
                    continue;
                }
                if let Envelope::Ping(pb::Ping { nonce }) = frame.into_frame().envelope {
                    channel.send(Frame::new(Envelope::Pong(pb::Pong { nonce }), vec![])).await?;
                }
            }
            Ok::<_, xoscar_transport::TransportError>(())
        });
    }
}

/// The end-of-batch marker of the bulk benches.
pub fn ping(nonce: u64) -> Frame {
    Frame::new(Envelope::Ping(pb::Ping { nonce }), vec![])
}

/// A request with one payload and an empty header.
pub fn request(id: u64, payload: &Bytes) -> Frame {
    Frame::request(id, Bytes::new(), [payload.clone()])
}

/// Raw limit, sockets: echo `[u32 len][body]` messages back as they are.
pub async fn raw_echo<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    let mut message = BytesMut::new();
    loop {
        let len = match stream.read_u32_le().await {
            Ok(len) => len as usize,
            Err(_) => return Ok(()),
        };
        message.clear();
        message.put_u32_le(len as u32);
        message.resize(4 + len, 0);
        stream.read_exact(&mut message[4..]).await?;
        stream.write_all(&message).await?;
    }
}

/// Serves [`raw_echo_batched`] on a fresh Unix socket named after `tag`, from the current
/// runtime, until the process ends; returns its address.
pub fn serve_raw_echo_on_unix(tag: &str) -> Address {
    let Address::Unix(path) = address("uds", tag) else { unreachable!("a unix address") };
    let _ = std::fs::remove_file(&path);
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(raw_echo_batched(stream));
        }
    });
    Address::unix(&path)
}

/// Serves [`raw_echo_batched`] on `transport` ("tcp": a fresh loopback port with `TCP_NODELAY`,
/// else a fresh Unix socket named after `tag`), from the current runtime, until the process
/// ends; returns its address.
pub async fn serve_raw_echo(transport: &str, tag: &str) -> Address {
    if transport != "tcp" {
        return serve_raw_echo_on_unix(tag);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            stream.set_nodelay(true).unwrap();
            tokio::spawn(raw_echo_batched(stream));
        }
    });
    Address::tcp(local)
}

/// Raw limit, sockets, many in flight: echoes `[u32 len][body]` messages, answering everything
/// that arrived together with one write (as a pipelining server would).
pub async fn raw_echo_batched<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    let mut out = Vec::new();
    loop {
        let len = match stream.read_u32_le().await {
            Ok(len) => len as usize,
            Err(_) => return Ok(()),
        };
        let start = out.len();
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.resize(start + 4 + len, 0);
        stream.read_exact(&mut out[start + 4..]).await?;
        if stream.buffer().is_empty() {
            stream.get_mut().write_all(&out).await?;
            out.clear();
        }
    }
}

/// Raw limit of a one-way transfer, sockets: reads `[u64 len]` and then `len` bytes straight
/// into a destination buffer of that size (kept between transfers), and answers one byte once
/// all are in.
pub async fn raw_transfer_sink<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
) -> std::io::Result<()> {
    let mut target = Vec::new();
    loop {
        let len = match stream.read_u64_le().await {
            Ok(len) => len as usize,
            Err(_) => return Ok(()),
        };
        target.resize(len, 0);
        stream.read_exact(&mut target).await?;
        stream.write_all(&[1]).await?;
    }
}

/// The client of [`raw_transfer_sink`]: sends `payload` and waits until the sink has it all.
pub async fn raw_transfer_send<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    payload: &[u8],
) -> std::io::Result<()> {
    stream.write_all(&(payload.len() as u64).to_le_bytes()).await?;
    stream.write_all(payload).await?;
    let mut ack = [0u8; 1];
    stream.read_exact(&mut ack).await?;
    Ok(())
}

/// Raw limit, sockets: one round trip of a prebuilt `[u32 len][body]` message.
pub async fn raw_round_trip<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut BufReader<S>,
    message: &[u8],
    reply: &mut [u8],
) -> std::io::Result<()> {
    stream.write_all(message).await?;
    let len = stream.read_u32_le().await? as usize;
    stream.read_exact(&mut reply[..len]).await?;
    Ok(())
}

/// Raw limit, sockets: reads `[u32 len][body]` messages into one reused buffer; a zero
/// length marks the end of a batch and is answered with one byte.
pub async fn raw_sink<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) -> std::io::Result<()> {
    let mut body = vec![0u8; 2 << 20];
    loop {
        let len = match stream.read_u32_le().await {
            Ok(len) => len as usize,
            Err(_) => return Ok(()),
        };
        if len == 0 {
            stream.write_all(&[1]).await?;
            continue;
        }
        if body.len() < len {
            body.resize(len, 0);
        }
        stream.read_exact(&mut body[..len]).await?;
    }
}

/// Raw limit, sockets: sends `count` messages of `payload` (vectored: prefix and body
/// together, no copy), then the end marker, and waits for the answer.
pub async fn raw_bulk<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    payload: &Bytes,
    count: u64,
) -> std::io::Result<()> {
    let prefix = (payload.len() as u32).to_le_bytes();
    for _ in 0..count {
        let mut message = Buf::chain(&prefix[..], payload.clone());
        stream.write_all_buf(&mut message).await?;
    }
    stream.write_all(&0u32.to_le_bytes()).await?;
    let mut ack = [0u8; 1];
    stream.read_exact(&mut ack).await?;
    Ok(())
}

/// Runs `iters` calls of `call` spread over `callers` concurrent tasks on the current runtime;
/// returns the time `iters` calls took.
pub async fn spread<F, Fut>(iters: u64, callers: u64, call: F) -> Duration
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let per_caller = iters.div_ceil(callers);
    let start = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let call = call.clone();
            tokio::spawn(async move {
                for i in 0..per_caller {
                    call(caller * per_caller + i).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("caller task");
    }
    start.elapsed().mul_f64(iters as f64 / (per_caller * callers) as f64)
}

/// The criterion settings every bench binary uses: 1 s warm-up, 3 s of measurement, 30
/// samples, then whatever the command line says.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
        .configure_from_args()
}
