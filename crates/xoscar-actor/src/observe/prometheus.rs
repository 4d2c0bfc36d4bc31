//! The Prometheus endpoint (feature `prometheus`): the process's `metrics` recorder is
//! metrics-exporter-prometheus's, and a pool answers `GET` on an address of its own with the
//! text exposition format.
//!
//! The HTTP side is a few lines of tokio, not an HTTP stack: any `GET` gets the metrics, with
//! the request head bounded (8 KiB), each exchange bounded in time (5 s) and at most
//! [`MAX_SCRAPERS`] scrapes at once (more are closed at once).

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Scrapes served at once by one endpoint.
pub const MAX_SCRAPERS: usize = 16;
const MAX_HEAD: usize = 8 * 1024;
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);

/// Histogram buckets of handler times, in seconds: 50 µs to 10 s.
const BUCKETS: [f64; 12] =
    [0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.01, 0.05, 0.25, 1.0, 2.5, 10.0];

/// The process's recorder, installed on first use; an error if another recorder was
/// installed first.
fn recorder() -> Result<PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets(&BUCKETS)
                .map_err(|error| error.to_string())?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).map_err(|_| {
                "another metrics recorder is installed in this process: serve it yourself"
                    .to_owned()
            })?;
            Ok(handle)
        })
        .clone()
}

/// A running endpoint; dropping it stops it (its task and every scrape in flight).
#[derive(Debug)]
pub(crate) struct Endpoint {
    pub(crate) address: SocketAddr,
    task: tokio::task::AbortHandle,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Installs the recorder (once per process) and serves it at `address`, exactly.
pub(crate) async fn serve(address: SocketAddr) -> Result<Endpoint, String> {
    let handle = recorder()?;
    let listener = bind_exactly(address)
        .map_err(|error| format!("cannot listen on {address} for Prometheus: {error}"))?;
    let address = listener.local_addr().map_err(|error| error.to_string())?;
    let task = tokio::spawn(async move {
        // Owned here: aborting this task aborts every scrape with it.
        let mut scrapes = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) if scrapes.len() < MAX_SCRAPERS => {
                        scrapes.spawn(answer(stream, handle.clone()));
                    }
                    Ok(_) => {} // over the limit: dropped, so closed
                    Err(error) => {
                        tracing::warn!(%address, %error, "Prometheus endpoint: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = scrapes.join_next(), if !scrapes.is_empty() => {}
            }
        }
    });
    Ok(Endpoint { address, task: task.abort_handle() })
}

/// A listener on exactly `address`: `[::]` does not also take IPv4 (`IPV6_V6ONLY`).
fn bind_exactly(address: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(address), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    socket.listen(128)?;
    TcpListener::from_std(socket.into())
}

/// Reads a request head and answers a `GET` with the metrics, anything else with 405.
async fn answer(mut stream: TcpStream, handle: PrometheusHandle) {
    let exchange = async {
        let mut head = Vec::with_capacity(512);
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_HEAD {
            let mut chunk = [0; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
        let response = if head.starts_with(b"GET ") {
            let body = handle.render();
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        } else {
            "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .to_owned()
        };
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    };
    let _ = tokio::time::timeout(EXCHANGE_TIMEOUT, exchange).await;
}
