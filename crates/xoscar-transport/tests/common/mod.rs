#![allow(dead_code)] // each test binary uses a different part

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use xoscar_transport::{Address, Listener, TransportConfig, TransportError, listen};

/// Every test's outer bound, so none can hang.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `future` under [`TEST_TIMEOUT`].
pub async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, future).await.expect("test exceeded its outer timeout")
}

/// A fresh address for each compiled-in transport: TCP on a free port, a Unix socket in the
/// temp dir, a unique in-process name.
#[allow(clippy::vec_init_then_push)] // the pushes are each behind a feature
pub fn addresses() -> Vec<Address> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let (n, pid) = (NEXT.fetch_add(1, Ordering::Relaxed), std::process::id());
    #[cfg(not(any(feature = "uds", feature = "inproc")))]
    let _ = (n, pid);
    #[allow(unused_mut)]
    let mut all = Vec::new();
    #[cfg(feature = "tcp")]
    all.push("127.0.0.1:0".parse().unwrap());
    #[cfg(feature = "uds")]
    all.push(Address::unix(std::env::temp_dir().join(format!("xoscar-t-{pid}-{n}.sock"))));
    #[cfg(feature = "inproc")]
    all.push(Address::inproc(format!("test-{pid}-{n}")));
    all
}

/// A listener that echoes every frame on every connection, each connection in its own task.
pub async fn echo_server(
    address: &Address,
    config: &TransportConfig,
) -> (Address, tokio::task::JoinHandle<()>) {
    let mut listener = listen(address, config).await.expect("listen");
    let local = listener.local_addr().clone();
    let task = tokio::spawn(async move { serve_echo(&mut listener).await });
    (local, task)
}

async fn serve_echo(listener: &mut Listener) {
    loop {
        let Ok(incoming) = listener.accept().await else { continue };
        tokio::spawn(async move {
            let mut channel = incoming.handshake().await?;
            while let Some(frame) = channel.recv().await? {
                channel.send(frame.into_frame()).await?;
            }
            Ok::<_, TransportError>(())
        });
    }
}

/// The socket-based addresses among [`addresses`].
pub fn socket_addresses() -> Vec<Address> {
    addresses().into_iter().filter(|a| !matches!(a, Address::Inproc(_))).collect()
}

/// A raw socket: a test peer that writes what it likes.
pub trait Raw: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Raw for T {}

/// Dials a socket address without our handshake.
#[cfg_attr(not(any(feature = "tcp", feature = "uds")), allow(unused_variables))]
pub async fn raw_dial(address: &Address) -> Box<dyn Raw> {
    match address {
        #[cfg(feature = "tcp")]
        Address::Tcp { .. } => {
            Box::new(tokio::net::TcpStream::connect(address.to_string()).await.unwrap())
        }
        #[cfg(feature = "uds")]
        Address::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await.unwrap()),
        other => panic!("no raw dial for {other}"),
    }
}
