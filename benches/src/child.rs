//! Servers in a child process, for benches that cross a process boundary: the bench binary
//! re-runs itself with `XOSCAR_BENCH_CHILD` set, serves our echo, a raw echo and an actor pool
//! on TCP and a Unix socket, prints their addresses and waits to be killed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use tokio::net::{TcpListener, UnixListener};
use xoscar_actor::ActorPool;
use xoscar_pool::testing::Echo;
use xoscar_pool::{ServerConfig, serve};
use xoscar_transport::Address;

use crate::actors::Echoer;
use crate::{address, current_thread, our_listener, raw_echo_batched, raw_transfer_sink};

const CHILD_ENV: &str = "XOSCAR_BENCH_CHILD";

/// The addresses a child serves: ours and raw, for tcp and uds.
#[derive(Debug, Clone)]
pub struct ChildAddresses {
    /// Our echo server over TCP.
    pub ours_tcp: Address,
    /// Our echo server over a Unix socket.
    pub ours_uds: Address,
    /// A raw `[u32 len][body]` echo over TCP.
    pub raw_tcp: Address,
    /// A raw `[u32 len][body]` echo over a Unix socket.
    pub raw_uds: Address,
    /// An actor pool over TCP with an [`crate::actors::Echoer`] under uid `echo`.
    pub actor_tcp: Address,
    /// The same over a Unix socket.
    pub actor_uds: Address,
    /// A raw one-way transfer sink ([`crate::raw_transfer_sink`]) over TCP.
    pub sink_tcp: Address,
    /// The same over a Unix socket.
    pub sink_uds: Address,
}

/// In the child (the variable is set): serves until killed, never returns. In the parent:
/// returns at once.
pub fn serve_if_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    current_thread().block_on(async {
        let ours_tcp =
            serve(our_listener(&address("tcp", "child")).await, Echo, ServerConfig::default())
                .unwrap();
        let ours_uds =
            serve(our_listener(&address("uds", "child")).await, Echo, ServerConfig::default())
                .unwrap();
        let raw_tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let raw_uds = crate::serve_raw_echo_on_unix("child-raw");
        let sink_tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let Address::Unix(sink_path) = address("uds", "child-sink") else { unreachable!() };
        let _ = std::fs::remove_file(&sink_path);
        let sink_uds = UnixListener::bind(&sink_path).unwrap();
        let mut actor_pools = Vec::new();
        for (key, transport) in [("ACTOR_TCP", "tcp"), ("ACTOR_UDS", "uds")] {
            let pool = ActorPool::start(address(transport, "child-actors")).await.unwrap();
            pool.create(Echoer::default()).uid("echo").await.unwrap();
            println!("{key} {}", pool.address());
            actor_pools.push(pool);
        }
        println!("OURS_TCP {}", ours_tcp.local_addr());
        println!("OURS_UDS {}", ours_uds.local_addr());
        println!("RAW_TCP {}", Address::tcp(raw_tcp.local_addr().unwrap()));
        println!("RAW_UDS {raw_uds}");
        println!("SINK_TCP {}", Address::tcp(sink_tcp.local_addr().unwrap()));
        println!("SINK_UDS {}", Address::unix(&sink_path));
        println!("READY");
        tokio::spawn(async move {
            while let Ok((stream, _)) = raw_tcp.accept().await {
                stream.set_nodelay(true).unwrap();
                tokio::spawn(raw_echo_batched(stream));
            }
        });
        tokio::spawn(async move {
            while let Ok((stream, _)) = sink_tcp.accept().await {
                stream.set_nodelay(true).unwrap();
                tokio::spawn(raw_transfer_sink(stream));
            }
        });
        tokio::spawn(async move {
            while let Ok((stream, _)) = sink_uds.accept().await {
                tokio::spawn(raw_transfer_sink(stream));
            }
        });
        std::future::pending::<()>().await;
        drop((ours_tcp, ours_uds, actor_pools));
    });
    std::process::exit(0);
}

/// The child process; SIGKILLed when dropped.
pub struct ChildServers {
    child: Child,
    /// What it serves.
    pub addresses: ChildAddresses,
}

impl ChildServers {
    /// Starts the child and waits until it serves.
    pub fn start() -> ChildServers {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, "1")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the bench's child server");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut found = std::collections::HashMap::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            if line == "READY" {
                break;
            }
            if let Some((key, value)) = line.split_once(' ') {
                found.insert(key.to_string(), value.parse::<Address>().unwrap());
            }
        }
        let take = |key: &str| {
            found.get(key).cloned().unwrap_or_else(|| panic!("child did not report {key}"))
        };
        let addresses = ChildAddresses {
            ours_tcp: take("OURS_TCP"),
            ours_uds: take("OURS_UDS"),
            raw_tcp: take("RAW_TCP"),
            raw_uds: take("RAW_UDS"),
            actor_tcp: take("ACTOR_TCP"),
            actor_uds: take("ACTOR_UDS"),
            sink_tcp: take("SINK_TCP"),
            sink_uds: take("SINK_UDS"),
        };
        ChildServers { child, addresses }
    }
}

impl Drop for ChildServers {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
