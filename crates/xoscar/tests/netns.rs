//! Real network faults between two hosts: two network namespaces joined by a veth pair
//! (`xoscar_testkit::netns`), an actor pool serving in one, a caller in the other, and iptables
//! dropping every packet between them, as a NAT that forgot the session does.
//!
//! Needs root, iproute2 and iptables, so every test here is ignored by a plain `cargo test`;
//! `cargo xtask netns` (and `.ci/run`, as root) runs them. Each test re-runs this binary:
//! once as the server in host B (`netns_server_entry`), once as itself in host A, where the
//! scenario runs and asserts. Time is real: the deadlines are upper bounds with slack.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use xoscar::transport::Keepalive;
use xoscar::{
    Actor, ActorError, ActorPool, Address, Context, Failure, Handler, PoolConfig, RemoteMessages,
    ServerConfig, TransportConfig, caller, configure, create_actor,
};
use xoscar_pool::PoolError;
use xoscar_testkit::netns::{self, HOST_B, Host, TestHosts};

/// Set in the server child: the directory it reports its socket count in.
const SERVER_ENV: &str = "XOSCAR_NETNS_SERVER";
/// Set in the caller child: the server's address.
const CALLER_ENV: &str = "XOSCAR_NETNS_CALLER";
/// Set in the caller child: host B's namespace, where it drops traffic.
const PEER_NS_ENV: &str = "XOSCAR_NETNS_PEER";
/// Set in the caller child: the file the server writes its socket count to.
const SOCKETS_ENV: &str = "XOSCAR_NETNS_SOCKETS";

// Liveness settings, short so the tests are quick; the deadlines below derive from them.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const SERVER_IDLE_TIMEOUT: Duration = Duration::from_secs(3);
/// Probes after 1 s idle, every 1 s, 2 unanswered: a dead peer is reset after about 3 s.
fn keepalive() -> Keepalive {
    Keepalive::default().idle(Duration::from_secs(1)).interval(Duration::from_secs(1)).retries(2)
}
/// Scheduling and kernel timer slack on a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(3);

#[derive(Clone)]
struct Sleeper;

#[derive(Clone, PartialEq, prost::Message)]
struct Sleep {
    #[prost(uint64, tag = "1")]
    ms: u64,
}

impl Actor for Sleeper {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Sleep>("Sleep");
    }
}

impl Handler<Sleep> for Sleeper {
    type Reply = u64;
    async fn handle(&mut self, sleep: Sleep, _: &mut Context<Self>) -> Result<u64, Failure> {
        tokio::time::sleep(Duration::from_millis(sleep.ms)).await;
        Ok(sleep.ms)
    }
}

/// Sockets this process has open (listeners included), from `/proc/self/fd`.
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// The server, in host B: an actor pool at `HOST_B:0` with short idle timeout and keepalive.
/// Prints its address, then writes its open socket count to a file every 50 ms until killed.
#[test]
fn netns_server_entry() {
    let Some(dir) = std::env::var_os(SERVER_ENV) else { return };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let address = Address::tcp((HOST_B, 0).into());
        let pool = ActorPool::builder(address)
            .register_concurrent("Sleeper", 128, |_: ()| Ok(Sleeper))
            .server_config(
                ServerConfig::default()
                    .idle_timeout(SERVER_IDLE_TIMEOUT)
                    .drain_timeout(Duration::from_secs(1)),
            )
            .transport_config(TransportConfig::default().keepalive(Some(keepalive())))
            .start()
            .await
            .unwrap();
        let file = Path::new(&dir).join("sockets");
        let staged = Path::new(&dir).join("sockets.new");
        println!("ADDRESS {}", pool.addresses()[0]);
        loop {
            std::fs::write(&staged, open_sockets().to_string()).unwrap();
            std::fs::rename(&staged, &file).unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}

/// Runs the test `name` as the caller in host A against a server in host B; panics with the
/// reason when it fails. Cleans the hosts up however it ends.
fn across_hosts(name: &str) {
    if let Err(why) = netns::available() {
        panic!("needs root, iproute2 and iptables ({why}): run it with `cargo xtask netns`");
    }
    let hosts = TestHosts::create();
    let exe = std::env::current_exe().unwrap();
    let dir = std::env::temp_dir().join(format!("xoscar-netns-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut server = hosts
        .command(Host::B, &exe)
        .args(["--exact", "netns_server_entry", "--nocapture", "--test-threads=1"])
        .env(SERVER_ENV, &dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (sender, address) = std::sync::mpsc::channel();
    let stdout = server.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some((_, address)) = line.split_once("ADDRESS ") {
                let _ = sender.send(address.trim().to_owned());
            }
        }
    });
    let result = address.recv_timeout(Duration::from_secs(30)).map(|address| {
        let mut caller = hosts
            .command(Host::A, &exe)
            .args(["--exact", name, "--ignored", "--nocapture", "--test-threads=1"])
            .env(CALLER_ENV, address)
            .env(PEER_NS_ENV, hosts.namespace(Host::B))
            .env(SOCKETS_ENV, dir.join("sockets"))
            .spawn()
            .unwrap();
        wait_at_most(&mut caller, Duration::from_secs(120))
    });
    let _ = server.kill(); // SIGKILL
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
    drop(hosts);
    match result {
        Ok(Some(status)) => assert!(status.success(), "the caller in host A failed: {status}"),
        Ok(None) => panic!("the caller in host A hung (killed after 120 s)"),
        Err(_) => panic!("the server in host B did not start within 30 s"),
    }
}

/// Waits for `child` up to `limit`, killing it past that (`None`).
fn wait_at_most(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What the caller child needs: the server's address, the peer namespace, the socket file.
struct Scene {
    server: Address,
    peer_ns: String,
    sockets: PathBuf,
}

impl Scene {
    /// `None` when this process is not the caller child.
    fn from_env() -> Option<Scene> {
        let server = std::env::var(CALLER_ENV).ok()?.parse().unwrap();
        let peer_ns = std::env::var(PEER_NS_ENV).unwrap();
        let sockets = std::env::var_os(SOCKETS_ENV).unwrap().into();
        configure(
            PoolConfig::default()
                .heartbeat_interval(HEARTBEAT_INTERVAL)
                .heartbeat_timeout(HEARTBEAT_TIMEOUT)
                .connect_timeout(CONNECT_TIMEOUT)
                .idle_timeout(Duration::from_secs(60))
                .transport(TransportConfig::default().keepalive(Some(keepalive()))),
        )
        .unwrap();
        Some(Scene { server, peer_ns, sockets })
    }

    fn server_sockets(&self) -> usize {
        std::fs::read_to_string(&self.sockets).unwrap().trim().parse().unwrap()
    }

    /// Polls the server's socket count until it is `expected`; the time it took.
    async fn server_sockets_reach(&self, expected: usize, limit: Duration) -> Duration {
        let start = Instant::now();
        while self.server_sockets() != expected {
            assert!(
                start.elapsed() < limit,
                "the server still holds {} sockets after {limit:?} (expected {expected})",
                self.server_sockets()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        start.elapsed()
    }
}

fn timed_out(error: &ActorError) -> bool {
    matches!(error, ActorError::Connection(PoolError::ConnectionTimedOut { .. }))
}

#[test]
#[ignore = "needs root and network namespaces: cargo xtask netns"]
fn session_loss_with_calls_in_flight() {
    let Some(scene) = Scene::from_env() else {
        return across_hosts("session_loss_with_calls_in_flight");
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let baseline = scene.server_sockets();
        let sleeper = create_actor::<Sleeper>(&scene.server, "Sleeper", &()).await.unwrap();
        assert_eq!(sleeper.call(Sleep { ms: 1 }).await.unwrap(), 1);
        let before = caller().unwrap().stats();
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let sleeper = sleeper.clone();
                tokio::spawn(async move { sleeper.call(Sleep { ms: 60_000 }).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(300)).await;
        scene.server_sockets_reach(baseline + 1, SLACK).await; // the server sees the connection
        netns::drop_traffic(&scene.peer_ns);
        let dropped = Instant::now();
        let verdict = HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT;
        for call in calls {
            let error = tokio::time::timeout(verdict + SLACK, call)
                .await
                .expect("a call hung past the dead-peer verdict")
                .unwrap()
                .unwrap_err();
            assert!(timed_out(&error), "expected the timed-out error, got {error}");
        }
        let detected = dropped.elapsed();
        println!("NETNS time to detect a dropped session with 8 calls in flight: {detected:?}");
        assert!(detected <= verdict + SLACK, "{detected:?}");
        let stats = caller().unwrap().stats();
        assert_eq!(stats.open_connections, 0, "the caller holds a dead connection: {stats:?}");
        assert_eq!(stats.dead_peers, before.dead_peers + 1, "{stats:?}");
        // The server's half had handlers in flight, so no idle timeout: keepalive frees it.
        let freed = scene.server_sockets_reach(baseline, Duration::from_secs(3) + SLACK * 2).await;
        println!("NETNS server freed its half (keepalive) {freed:?} after the verdict");

        netns::restore_traffic(&scene.peer_ns);
        assert_eq!(sleeper.call(Sleep { ms: 2 }).await.unwrap(), 2);
        let after = caller().unwrap().stats();
        assert_eq!(after.connects, before.connects + 1, "a fresh connection: {after:?}");
    });
}

#[test]
#[ignore = "needs root and network namespaces: cargo xtask netns"]
fn session_loss_while_idle() {
    let Some(scene) = Scene::from_env() else {
        return across_hosts("session_loss_while_idle");
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let baseline = scene.server_sockets();
        let sleeper = create_actor::<Sleeper>(&scene.server, "Sleeper", &()).await.unwrap();
        assert_eq!(sleeper.call(Sleep { ms: 1 }).await.unwrap(), 1);
        let first = caller().unwrap().stats();
        assert_eq!(first.open_connections, 1);
        scene.server_sockets_reach(baseline + 1, SLACK).await; // the server sees the connection

        // 1. The session drops while idle and a call comes at once, before TCP keepalive could
        //    notice: the heartbeat's verdict, not a hang.
        netns::drop_traffic(&scene.peer_ns);
        let start = Instant::now();
        let error = sleeper.call(Sleep { ms: 1 }).await.unwrap_err();
        assert!(timed_out(&error), "expected the timed-out error, got {error}");
        let detected = start.elapsed();
        println!("NETNS a call on a dropped idle session failed after {detected:?}");
        assert!(detected <= HEARTBEAT_INTERVAL + HEARTBEAT_TIMEOUT + SLACK, "{detected:?}");
        assert_eq!(caller().unwrap().stats().open_connections, 0);
        // The server, which never saw that call, frees its half by its idle timeout (then
        // go-away, 1 s drain, 1 s linger).
        let limit = SERVER_IDLE_TIMEOUT + Duration::from_secs(2) + SLACK;
        let freed = scene.server_sockets_reach(baseline, limit).await;
        println!("NETNS the server freed its idle half after another {freed:?}");
        // A new dial cannot get through: the connect timeout, not a hang.
        let start = Instant::now();
        let error = sleeper.call(Sleep { ms: 1 }).await.unwrap_err();
        assert!(matches!(error, ActorError::Connection(PoolError::Connect { .. })), "{error}");
        assert!(start.elapsed() <= CONNECT_TIMEOUT + SLACK, "{:?}", start.elapsed());

        // 2. Back up: a fresh connection. Then it drops again and nobody calls: TCP keepalive
        //    frees the caller's idle half, the idle timeout the server's.
        netns::restore_traffic(&scene.peer_ns);
        assert_eq!(sleeper.call(Sleep { ms: 2 }).await.unwrap(), 2);
        let second = caller().unwrap().stats();
        assert_eq!(second.connects, first.connects + 1, "a fresh connection: {second:?}");
        scene.server_sockets_reach(baseline + 1, SLACK).await;
        netns::drop_traffic(&scene.peer_ns);
        let start = Instant::now();
        while caller().unwrap().stats().open_connections != 0 {
            assert!(start.elapsed() < Duration::from_secs(3) + SLACK, "keepalive did not fire");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("NETNS keepalive freed the caller's idle half after {:?}", start.elapsed());
        scene.server_sockets_reach(baseline, limit).await;

        netns::restore_traffic(&scene.peer_ns);
        assert_eq!(sleeper.call(Sleep { ms: 3 }).await.unwrap(), 3);
        let last = caller().unwrap().stats();
        assert_eq!(last.connects, second.connects + 1, "a fresh connection: {last:?}");
    });
}

/// Set in the child of `a_killed_test_leaves_no_namespace_behind`.
const ABANDON_ENV: &str = "XOSCAR_NETNS_ABANDON";

/// Makes test hosts, says so, and waits to be killed.
#[test]
fn netns_abandon_entry() {
    if std::env::var_os(ABANDON_ENV).is_none() {
        return;
    }
    let _hosts = TestHosts::create();
    println!("HOSTS_READY");
    std::thread::sleep(Duration::from_secs(120));
}

fn namespaces_of(pid: u32) -> usize {
    let output = std::process::Command::new("ip").args(["netns", "list"]).output().unwrap();
    let prefix = format!("{}{pid}n", netns::PREFIX);
    String::from_utf8_lossy(&output.stdout).lines().filter(|l| l.starts_with(&prefix)).count()
}

#[test]
#[ignore = "needs root and network namespaces: cargo xtask netns"]
fn a_killed_test_leaves_no_namespace_behind() {
    if let Err(why) = netns::available() {
        panic!("needs root, iproute2 and iptables ({why}): run it with `cargo xtask netns`");
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "netns_abandon_entry", "--nocapture", "--test-threads=1"])
        .env(ABANDON_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let ready = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|line| line.contains("HOSTS_READY"));
    assert!(ready, "the child did not make its hosts");
    let pid = child.id();
    assert_eq!(namespaces_of(pid), 2);
    child.kill().unwrap(); // SIGKILL: its Drop never runs
    child.wait().unwrap();
    assert_eq!(namespaces_of(pid), 2, "left behind, as expected of a killed process");
    assert!(netns::remove_stale() >= 2);
    assert_eq!(namespaces_of(pid), 0);
}
