//! Flow control bounds memory on both sides: a caller floods a slow handler in another process
//! with one-way messages and calls; both processes' resident memory stays under a stated bound
//! far below what was sent, and every message still arrives. Its own binary: it measures
//! process-wide memory, and the server runs in a child process.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::Duration;

use bytes::Bytes;
use common::run;
use xoscar_pool::{Handler, Message, Pool, PoolConfig, ServerConfig, serve};
use xoscar_transport::{Address, TransportConfig, listen};

const CHILD_ENV: &str = "XOSCAR_TEST_FLOW_CHILD";
const PAYLOAD: usize = 64 * 1024;
const NOTIFIES: usize = 2_000;
const CALLERS: usize = 64;
const CALLS_EACH: usize = 16;
/// What each process's resident memory may grow by: the limits set below (8 MiB on the
/// server, 4 MiB on the caller) plus read buffers, frames in flight and allocator slack.
/// The flood itself is (2,000 + 1,024) × 64 KiB ≈ 189 MiB.
const BOUND_MIB: u64 = 48;

/// Slow on purpose: each one-way message and each call takes about a millisecond.
#[derive(Clone, Default)]
struct SlowCounter {
    notifies: Arc<AtomicU64>,
    calls: Arc<AtomicU64>,
}

impl Handler for SlowCounter {
    async fn call(&self, request: Message) -> Message {
        if &request.header[..] == b"count" {
            let counts = format!("{} {}", self.notifies.load(SeqCst), self.calls.load(SeqCst));
            return Message::new(Bytes::from(counts), vec![]);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        self.calls.fetch_add(1, SeqCst);
        Message::default()
    }

    async fn notify(&self, _message: Message) {
        tokio::time::sleep(Duration::from_millis(1)).await;
        self.notifies.fetch_add(1, SeqCst);
    }
}

/// Resident memory now and at its peak, in KiB, of process `pid`.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[test]
fn child_server_entry() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let listener =
            listen(&"127.0.0.1:0".parse().unwrap(), &TransportConfig::default()).await.unwrap();
        let config = ServerConfig::default().max_in_flight(32).max_buffered_bytes(8 << 20);
        let server = serve(listener, SlowCounter::default(), config).unwrap();
        println!("ADDR {}", server.local_addr());
        std::future::pending::<()>().await;
    });
}

#[test]
fn flooding_a_slow_handler_stays_within_bounded_memory_on_both_sides() {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_server_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let child_pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let endpoint: Address = loop {
        let line = lines.next().expect("child exited").unwrap();
        if let Some(at) = line.find("ADDR ") {
            break line[at + 5..].parse().unwrap();
        }
    };
    let killer = KillOnDrop(child);
    let (child_base, _) = memory_kib(child_pid);
    let (own_base, _) = memory_kib(std::process::id());

    run(async {
        let pool = Pool::new(PoolConfig::default().max_queued_bytes(4 << 20)).unwrap();
        let flood = tokio::spawn({
            let (pool, endpoint) = (pool.clone(), endpoint.clone());
            async move {
                for i in 0..NOTIFIES {
                    // A fresh buffer each time: a queue that grew would hold them all.
                    let payload = Bytes::from(vec![i as u8; PAYLOAD]);
                    pool.notify(&endpoint, Message::new(Bytes::new(), vec![payload]))
                        .await
                        .unwrap();
                }
            }
        });
        let callers: Vec<_> = (0..CALLERS)
            .map(|caller| {
                let (pool, endpoint) = (pool.clone(), endpoint.clone());
                tokio::spawn(async move {
                    for _ in 0..CALLS_EACH {
                        let payload = Bytes::from(vec![caller as u8; PAYLOAD]);
                        let request = Message::new(Bytes::new(), vec![payload]);
                        pool.call(&endpoint, request).await.unwrap();
                    }
                })
            })
            .collect();
        flood.await.unwrap();
        for caller in callers {
            caller.await.unwrap();
        }
        // Every message arrives: wait for the slow handler to finish the backlog.
        let expected = format!("{NOTIFIES} {}", CALLERS * CALLS_EACH);
        let mut counts = String::new();
        for _ in 0..2_000 {
            let reply =
                pool.call(&endpoint, Message::new(Bytes::from_static(b"count"), vec![])).await;
            counts = String::from_utf8(reply.unwrap().header.to_vec()).unwrap();
            if counts == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(counts, expected, "one-way messages and calls handled");
    });

    let (_, child_peak) = memory_kib(child_pid);
    let (_, own_peak) = memory_kib(std::process::id());
    let grew = |peak: u64, base: u64| peak.saturating_sub(base) / 1024;
    let (server_grew, caller_grew) = (grew(child_peak, child_base), grew(own_peak, own_base));
    eprintln!("resident memory grew by {server_grew} MiB (server), {caller_grew} MiB (caller)");
    assert!(server_grew < BOUND_MIB, "server grew by {server_grew} MiB, bound {BOUND_MIB} MiB");
    assert!(caller_grew < BOUND_MIB, "caller grew by {caller_grew} MiB, bound {BOUND_MIB} MiB");
    drop(killer);
}

/// SIGKILLs the child server when the test ends, passing or not.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
