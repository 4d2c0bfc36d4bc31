#![allow(dead_code)] // each test binary uses a different part

pub mod child;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use xoscar_pool::{Handler, Message, Pool, PoolConfig, Server, ServerConfig, serve};
use xoscar_transport::{Address, TransportConfig, listen};

#[allow(unused_imports)] // each test binary uses a different part
pub use xoscar_testkit::{TEST_TIMEOUT, run, run_paused};

/// A fresh address for each socket or in-process transport.
pub fn addresses() -> Vec<Address> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    vec![
        "127.0.0.1:0".parse().unwrap(),
        Address::unix(std::env::temp_dir().join(format!("xoscar-pool-{pid}-{n}.sock"))),
        Address::inproc(format!("pool-test-{pid}-{n}")),
    ]
}

/// A fresh in-process address.
pub fn inproc() -> Address {
    addresses().pop().unwrap()
}

/// Serves `handler` on `address`.
pub async fn start<H: Handler>(address: &Address, handler: H, config: ServerConfig) -> Server {
    let listener = listen(address, &TransportConfig::default()).await.expect("listen");
    serve(listener, handler, config).expect("serve")
}

/// A pool reaping after `idle`, with a heartbeat slow enough not to matter in the test.
pub fn pool_with(idle: Duration) -> Pool {
    let config = PoolConfig::default()
        .idle_timeout(idle)
        .heartbeat_interval(Duration::from_secs(5))
        .heartbeat_timeout(Duration::from_secs(15));
    Pool::new(config).unwrap()
}

/// Lets every ready task run without moving the paused clock.
pub async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// An echo server on TCP, on its own thread and runtime, for the life of the test binary.
pub fn echo_server() -> Address {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let address = "127.0.0.1:0".parse().unwrap();
            let server = start(&address, xoscar_pool::testing::Echo, ServerConfig::default()).await;
            tx.send(server.local_addr().clone()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    rx.recv().unwrap()
}

pub fn message(text: &'static str) -> Message {
    Message::new(Bytes::from_static(text.as_bytes()), vec![])
}

/// A handler that sleeps for the number of milliseconds in the header, then echoes. Counts
/// requests that started and those dropped before finishing (cancelled).
#[derive(Clone, Default)]
pub struct Sleepy {
    pub started: Arc<AtomicUsize>,
    pub dropped: Arc<AtomicUsize>,
    pub notified: Arc<AtomicUsize>,
}

struct CountDrop(Arc<AtomicUsize>, bool);

impl Drop for CountDrop {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Handler for Sleepy {
    async fn call(&self, request: Message) -> Message {
        self.started.fetch_add(1, Ordering::SeqCst);
        let mut guard = CountDrop(self.dropped.clone(), false);
        let millis: u64 =
            std::str::from_utf8(&request.header).ok().and_then(|t| t.parse().ok()).unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(millis)).await;
        guard.1 = true;
        request
    }

    async fn notify(&self, _message: Message) {
        self.notified.fetch_add(1, Ordering::SeqCst);
    }
}

/// A request asking [`Sleepy`] to take `millis`.
pub fn sleep_for(millis: u64) -> Message {
    Message::new(Bytes::from(millis.to_string()), vec![])
}

/// Polls `condition` every 10 ms until it holds or `limit` passes; returns whether it held.
pub async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A handler driven by its request header: `panic` panics on the first poll, `panic-after:<ms>`
/// panics after sleeping, `sleep:<ms>` answers after sleeping, anything else answers at once.
/// Every answer is the request itself. Counts started requests and dropped (unfinished)
/// handler futures; one-way messages are recorded in order (header text), and `panic` panics
/// there too.
#[derive(Clone, Default)]
pub struct Scripted {
    pub started: Arc<AtomicUsize>,
    pub dropped: Arc<AtomicUsize>,
    pub notes: Arc<parking_lot::Mutex<Vec<String>>>,
}

fn command(header: &[u8]) -> (&str, u64) {
    let text = std::str::from_utf8(header).unwrap_or("");
    match text.split_once(':') {
        Some((name, arg)) => (name, arg.parse().unwrap_or(0)),
        None => (text, 0),
    }
}

impl Handler for Scripted {
    async fn call(&self, request: Message) -> Message {
        self.started.fetch_add(1, Ordering::SeqCst);
        let mut guard = CountDrop(self.dropped.clone(), false);
        match command(&request.header) {
            ("panic", _) => panic!("scripted panic"),
            ("panic-after", millis) => {
                tokio::time::sleep(Duration::from_millis(millis)).await;
                panic!("scripted panic after {millis} ms")
            }
            ("sleep", millis) => tokio::time::sleep(Duration::from_millis(millis)).await,
            _ => {}
        }
        guard.1 = true;
        request
    }

    async fn notify(&self, message: Message) {
        let text = String::from_utf8_lossy(&message.header).into_owned();
        if text == "panic" {
            panic!("scripted one-way panic");
        }
        if let ("sleep", millis) = command(&message.header) {
            tokio::time::sleep(Duration::from_millis(millis)).await;
        }
        self.notes.lock().push(text);
    }
}

/// A message whose header is `text`.
pub fn header(text: impl Into<String>) -> Message {
    Message::new(Bytes::from(text.into()), vec![])
}
