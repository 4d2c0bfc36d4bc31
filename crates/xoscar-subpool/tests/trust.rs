//! Every peer is a stranger (docs/security.md): a peer may call, create and destroy, and
//! nothing else. Each request meant for the pools of one host is refused on any other
//! listener and from any other process; a main pool is no relay; buffers are written only by
//! holders of their reference; the host-internal sockets live in a private directory. Its own
//! binary: it runs sub pools and an intruding process.

// The actor crate's test helpers (actors, scenarios, child processes), shared as source.
#[path = "../../xoscar-actor/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use common::actors::{self, Add, Counter, CounterInit, Get};
use common::run;
use prost::Message as _;
use xoscar_actor::pb::{self, request::Kind};
use xoscar_actor::{
    ActorError, ActorPool, BufferRef, Placement, SharedBuffer, caller, create_actor,
};
use xoscar_pool::{Message, Pool, PoolConfig};
use xoscar_subpool::{MainPool, SubPool, WithSubPools, run_if_sub_pool};
use xoscar_transport::Address;

/// Set in the intruder child: the address it sends a `Routes` request to.
const INTRUDER_ENV: &str = "XOSCAR_TEST_INTRUDER";

#[test]
fn sub_pool_entry() {
    run_if_sub_pool(actors::register);
}

/// The intruder: another process of the same user, dialling a sub pool's internal socket to
/// send it routes. Prints the kind of error it got.
#[test]
fn intruder_entry() {
    let Ok(target) = std::env::var(INTRUDER_ENV) else { return };
    run(async move {
        let target: Address = target.parse().unwrap();
        let decoy: Address = "127.0.0.1:9".parse().unwrap();
        let answer =
            send(&Pool::new(PoolConfig::default()).unwrap(), &target, routes(&decoy, &decoy)).await;
        println!("INTRUDER {}", kind_of(&answer));
    });
}

fn sub_pool() -> SubPool {
    let args = ["--exact", "sub_pool_entry", "--nocapture", "--test-threads=1"];
    SubPool::new().program(std::env::current_exe().unwrap(), args)
}

async fn main_with_sub_pool() -> MainPool {
    let builder = actors::register(ActorPool::builder("127.0.0.1:0".parse().unwrap()));
    builder.sub_pool(sub_pool()).start().await.unwrap()
}

/// A `Routes` request: calls to `external` go to `internal` from now on.
fn routes(external: &Address, internal: &Address) -> Message {
    let route = pb::Route { external: external.to_string(), internal: internal.to_string() };
    request(Kind::Routes(pb::Routes { routes: vec![route] }), Vec::new())
}

fn request(kind: Kind, payloads: Vec<Bytes>) -> Message {
    Message::new(pb::Request { kind: Some(kind) }.encode_to_vec(), payloads)
}

/// Sends `request` to `address` on `pool` (a pool-level call: no router, no mapping).
async fn send(pool: &Pool, address: &Address, request: Message) -> Message {
    pool.call(address, request).await.expect("the pool answers")
}

/// The error kind of an actor-layer response, or `ok`.
fn kind_of(response: &Message) -> String {
    if response.header.is_empty() {
        return "ok".into();
    }
    match pb::Reply::decode(response.header.clone()).unwrap().outcome {
        Some(pb::reply::Outcome::Failure(failure)) => {
            format!("{:?}", pb::ErrorKind::try_from(failure.kind).unwrap())
        }
        _ => "ok".into(),
    }
}

/// A pool reached through its listener only (as from another process), with a counter at 10
/// (`total`).
async fn counting_pool(total: i64) -> (ActorPool, xoscar_actor::ActorRef<Counter>) {
    let pool = actors::register(ActorPool::builder("127.0.0.1:0".parse().unwrap()))
        .direct_delivery(false)
        .start()
        .await
        .unwrap();
    let counter = pool.create(Counter::new(total)).uid("counter").await.unwrap();
    (pool, counter)
}

/// The scenario: a `Routes` request to a pool's TCP port, from a stranger, that would
/// move this process's calls to another pool onto a decoy. Refused as `FORBIDDEN`; the calls
/// still reach the real pool. The pool is of this very process, so the caller's own calls are
/// the ones at stake.
#[test]
fn routes_are_refused_on_a_pools_public_listener() {
    run(async {
        let (target, counter) = counting_pool(10).await;
        let (decoy, _) = counting_pool(666).await;
        let (victim, _) = counting_pool(0).await;
        let stranger = Pool::new(PoolConfig::default()).unwrap();
        let answer =
            send(&stranger, victim.address(), routes(target.address(), decoy.address())).await;
        assert_eq!(kind_of(&answer), "Forbidden");
        let answer =
            send(caller().unwrap(), victim.address(), routes(target.address(), decoy.address()))
                .await;
        assert_eq!(kind_of(&answer), "Forbidden");
        assert_eq!(counter.call(Get {}).await.unwrap().value, 10, "calls still reach the target");
    });
}

/// On a sub pool, routes are refused on its TCP listener (even from its main pool's process)
/// and, on its internal socket, from any process but its main pool's (the kernel names the
/// dialling process); its main pool's internal socket takes no routes either. The main pool's
/// own routes are taken (`sub_pools_call_each_other_and_the_main_pool_over_unix_sockets`), at
/// most 1,024 at a time.
#[test]
fn routes_are_taken_only_from_the_main_pool_over_the_internal_socket() {
    run(async {
        let main = main_with_sub_pool().await;
        let sub = main.sub_pools()[0].clone();
        let decoy: Address = "127.0.0.1:9".parse().unwrap();
        let direct = Pool::new(PoolConfig::default()).unwrap();
        let answer = send(&direct, &sub.address, routes(&decoy, &decoy)).await;
        assert_eq!(kind_of(&answer), "Forbidden", "on the sub pool's TCP listener");
        let main_internal = main.addresses().last().unwrap().clone();
        let answer = send(&direct, &main_internal, routes(&decoy, &decoy)).await;
        assert_eq!(kind_of(&answer), "Forbidden", "on the main pool's internal socket");

        let intruder = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "intruder_entry", "--nocapture", "--test-threads=1"])
            .env(INTRUDER_ENV, sub.internal.to_string())
            .stdout(Stdio::piped())
            .output()
            .expect("run the intruder");
        let said = String::from_utf8_lossy(&intruder.stdout);
        let verdict = BufReader::new(said.as_bytes())
            .lines()
            .find_map(|line| line.ok()?.split_once("INTRUDER ").map(|(_, kind)| kind.to_owned()));
        assert_eq!(verdict.as_deref(), Some("Forbidden"), "from another process: {said}");

        // This process is the main pool's: taken, within the bound.
        let many: Vec<pb::Route> = (0..1025)
            .map(|n| pb::Route {
                external: format!("127.0.0.1:{}", 20000 + n),
                internal: "unix:///nowhere".into(),
            })
            .collect();
        let too_many = request(Kind::Routes(pb::Routes { routes: many }), Vec::new());
        assert_eq!(kind_of(&send(&direct, &sub.internal, too_many).await), "BadMessage");
        assert_eq!(kind_of(&send(&direct, &sub.internal, routes(&decoy, &decoy)).await), "ok");
    });
}

/// Actor-gone notices are taken only on a main pool's internal socket, from one of its sub
/// pools' processes: not on its public listener, and not from its own process.
#[test]
fn gone_notices_are_taken_only_from_sub_pools() {
    run(async {
        let main = main_with_sub_pool().await;
        let direct = Pool::new(PoolConfig::default()).unwrap();
        let gone = || request(Kind::Gone(pb::Target { uid: "anyone".into() }), Vec::new());
        assert_eq!(kind_of(&send(&direct, main.address(), gone()).await), "Forbidden");
        let main_internal = main.addresses().last().unwrap().clone();
        assert_eq!(kind_of(&send(&direct, &main_internal, gone()).await), "Forbidden");
    });
}

/// A main pool is not a relay: placing on an address that is neither the pool nor one of its
/// sub pools fails as `Placement`, naming no connect error, and nothing is created there.
#[test]
fn a_pool_does_not_place_actors_on_an_address_a_peer_names() {
    run(async {
        let (main, _) = counting_pool(0).await;
        let (unrelated, _) = counting_pool(0).await;
        let placed = create_actor::<Counter>(main.address(), "Counter", &CounterInit::default())
            .placement(Placement::Address(unrelated.address().clone()))
            .await;
        match placed {
            Err(ActorError::Placement { reason, .. }) => {
                assert!(reason.contains("neither this pool nor one of its sub pools"), "{reason}");
            }
            other => panic!("expected a placement error, got {other:?}"),
        }
        assert_eq!(unrelated.actor_count(), 1, "only its own counter");
        let closed: Address = "127.0.0.1:9".parse().unwrap();
        let scan = create_actor::<Counter>(main.address(), "Counter", &CounterInit::default())
            .placement(Placement::Address(closed))
            .await
            .unwrap_err();
        assert!(matches!(scan, ActorError::Placement { .. }), "no port scanning: {scan:?}");
        // Its own address is fine.
        let here = create_actor::<Counter>(main.address(), "Counter", &CounterInit::default())
            .placement(Placement::Address(main.address().clone()))
            .await
            .unwrap();
        assert_eq!(here.address(), main.address());
    });
}

/// A request already forwarded 4 times is not forwarded again (a loop), and says so.
#[test]
fn forwarding_stops_after_four_hops() {
    run(async {
        let main = main_with_sub_pool().await;
        let counter = create_actor::<Counter>(main.address(), "Counter", &CounterInit::default())
            .placement(Placement::SubPool(0))
            .await
            .unwrap();
        let call = |hops| {
            let delivery = pb::Delivery { uid: counter.uid().into(), message: "Add".into(), hops };
            request(Kind::Call(delivery), vec![Add { n: 1 }.encode_to_vec().into()])
        };
        let direct = Pool::new(PoolConfig::default()).unwrap();
        assert_eq!(kind_of(&send(&direct, main.address(), call(3)).await), "ok");
        assert_eq!(kind_of(&send(&direct, main.address(), call(4)).await), "Forbidden");
    });
}

/// The main pool's and its sub pools' internal sockets are in one directory of a fresh random
/// name that only this user may enter, removed with the pool.
#[test]
fn host_sockets_live_in_a_private_directory_that_goes_with_the_pool() {
    use std::os::unix::fs::PermissionsExt;
    run(async {
        let main = main_with_sub_pool().await;
        let Address::Unix(main_socket) = main.addresses().last().unwrap().clone() else {
            panic!("the main pool's last address is its internal socket")
        };
        let dir = main_socket.parent().unwrap().to_path_buf();
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", dir.display());
        let Address::Unix(sub_socket) = main.sub_pools()[0].internal.clone() else { panic!() };
        assert_eq!(sub_socket.parent().unwrap(), dir);
        let other = main_with_sub_pool().await;
        let Address::Unix(other_socket) = other.addresses().last().unwrap().clone() else {
            panic!()
        };
        assert_ne!(other_socket.parent().unwrap(), dir, "a directory per main pool");
        drop(main);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while dir.exists() {
            assert!(std::time::Instant::now() < deadline, "{} outlived its pool", dir.display());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

/// A buffer is written only with its reference: its id and key are 128 random bits, and a
/// reference with the right id and another key reads as no buffer at all.
#[test]
fn buffers_are_written_only_by_holders_of_their_reference() {
    run(async {
        let (pool, _) = counting_pool(0).await;
        let buffer = SharedBuffer::zeroed(8);
        let exposed = pool.expose_buffer(buffer.clone());
        let another = pool.expose_buffer(SharedBuffer::zeroed(8));
        assert!(exposed.id().abs_diff(another.id()) > 1, "ids are not a sequence");
        let forged = BufferRef::decode(
            pb_buffer_ref(exposed.address_text(), exposed.id(), exposed.len(), 0).as_slice(),
        )
        .unwrap();
        let writer = forged.writer().await.unwrap();
        let error = writer.write(&forged, 0, Bytes::from_static(b"intruder")).await.unwrap_err();
        assert!(matches!(error, ActorError::Buffer { .. }), "{error:?}");
        assert!(error.to_string().contains("no such buffer"), "{error}");
        assert_eq!(buffer.to_vec(), vec![0; 8], "untouched");
        writer.write(&exposed, 0, Bytes::from_static(b"rightful")).await.unwrap();
        assert_eq!(buffer.to_vec(), b"rightful");
        assert!(!format!("{exposed:?}").contains("key"), "Debug never shows the key");
    });
}

/// A `BufferRef`'s bytes: address 1, id 2, len 3, key 4 (fixed64).
fn pb_buffer_ref(address: &str, id: u64, len: u64, key: u64) -> Vec<u8> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct Raw {
        #[prost(string, tag = "1")]
        address: String,
        #[prost(uint64, tag = "2")]
        id: u64,
        #[prost(uint64, tag = "3")]
        len: u64,
        #[prost(fixed64, tag = "4")]
        key: u64,
    }
    Raw { address: address.into(), id, len, key }.encode_to_vec()
}

/// A main pool killed with SIGKILL cannot remove its directory; the next main pool on the host
/// removes the directories whose lock nobody holds (their pool is gone), and only those.
#[test]
fn a_directory_left_by_a_killed_main_pool_is_removed_by_the_next() {
    run(async {
        let dir = |name: &str| {
            let dir = std::env::temp_dir().join(format!("xoscar-{}-{name}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("main.sock"), b"").unwrap();
            (dir.clone(), std::fs::File::create(dir.join("lock")).unwrap())
        };
        let (stale, _unlocked) = dir("00000000deadbeef");
        let (alive, held) = dir("00000000cafef00d");
        held.lock().unwrap();
        let main = main_with_sub_pool().await;
        assert!(!stale.exists(), "the gone pool's directory is removed");
        assert!(alive.exists(), "a directory whose lock is held is kept");
        drop(held);
        std::fs::remove_dir_all(alive).unwrap();
        drop(main);
    });
}
