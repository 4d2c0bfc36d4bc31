//! Sub pools in child processes (issue 9, first part): each starts with its own environment,
//! label and addresses; a sub pool that cannot start fails the main pool's start, naming it,
//! and leaves no process behind; sub pools die with their main pool, also when its process is
//! SIGKILLed (checked by pid), and their output reaches it tagged; placement, forwarding,
//! recovery, and adding and removing sub pools. Its own binary: it counts processes.

// The actor crate's test helpers (actors, scenarios, child processes), shared as source.
#[path = "../../xoscar-actor/tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::actors::{self, Empty, EnvReader, EnvValue, ReadEnv};
use common::run;
use xoscar_actor::{ActorError, ActorPool, create_actor};
use xoscar_subpool::{MainPool, SubPool, WithSubPools, run_if_sub_pool};
use xoscar_transport::Address;

/// Set when this binary runs as a main pool whose process the test kills.
const MAIN_ENV: &str = "XOSCAR_TEST_MAIN_POOL";

#[test]
fn sub_pool_entry() {
    run_if_sub_pool(actors::register);
}

/// In the child run by `sub_pools_die_when_their_main_pool_is_killed`: a main pool with two
/// sub pools, their pids printed, serving until killed.
#[test]
fn main_pool_entry() {
    if std::env::var_os(MAIN_ENV).is_none() {
        return;
    }
    run(async {
        let main = with_sub_pools(2).await.unwrap();
        for sub in main.sub_pools() {
            println!("SUB_PID {}", sub.pid);
        }
        println!("MAIN_READY");
        std::future::pending::<()>().await;
    });
}

/// A sub pool running this test binary's `sub_pool_entry`.
fn sub_pool() -> SubPool {
    let args = ["--exact", "sub_pool_entry", "--nocapture", "--test-threads=1"];
    SubPool::new().program(std::env::current_exe().unwrap(), args)
}

async fn with_sub_pools(count: usize) -> Result<MainPool, ActorError> {
    let mut builder =
        MainPool::builder(actors::register(ActorPool::builder("127.0.0.1:0".parse().unwrap())));
    for index in 0..count {
        let sub =
            sub_pool().label(format!("gpu{index}")).env("XOSCAR_TEST_DEVICE", index.to_string());
        builder = builder.sub_pool(sub);
    }
    builder.start().await
}

/// Whether process `pid` still runs (a zombie nobody reaped counts as gone).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
        }
        Err(_) => false,
    }
}

/// Polls until every pid is gone; false if some still run after `limit`.
fn all_gone(pids: &[u32], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while pids.iter().any(|&pid| alive(pid)) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// The pids of this process's children running `sub_pool_entry`.
fn sub_pool_children() -> Vec<u32> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if fields.get(1) == Some(&me.as_str())
            && fields.first() != Some(&"Z")
            && String::from_utf8_lossy(&cmdline).contains("sub_pool_entry")
        {
            found.push(pid);
        }
    }
    found
}

#[test]
fn sub_pools_start_with_their_environment_and_fail_cleanly() {
    run(async {
        let main = with_sub_pools(2).await.unwrap();
        let subs = main.sub_pools();
        assert_eq!(subs.len(), 2);
        for (index, sub) in subs.iter().enumerate() {
            assert_eq!((sub.index, sub.label.as_str()), (index, format!("gpu{index}").as_str()));
            assert_ne!(sub.pid, std::process::id());
            assert!(
                matches!(&sub.address, Address::Tcp { port, .. } if *port != 0),
                "{}",
                sub.address
            );
            assert!(matches!(sub.internal, Address::Unix(_)));
            let reader =
                create_actor::<EnvReader>(&sub.address, "EnvReader", &Empty {}).await.unwrap();
            let seen = reader.call(ReadEnv { key: "XOSCAR_TEST_DEVICE".into() }).await.unwrap();
            assert_eq!(seen, EnvValue { value: index.to_string(), pid: sub.pid });
        }
        let pids: Vec<u32> = subs.iter().map(|sub| sub.pid).collect();
        drop(main);
        assert!(all_gone(&pids, Duration::from_secs(10)), "sub pools outlived their main pool");

        // The second sub pool's port is taken: the start fails naming it, and the first one,
        // which did start, is gone too.
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = Address::tcp(taken.local_addr().unwrap());
        let builder = actors::register(ActorPool::builder("127.0.0.1:0".parse().unwrap()))
            .sub_pool(sub_pool().label("fine"))
            .sub_pool(sub_pool().label("clash").address(address));
        match builder.start().await.unwrap_err() {
            ActorError::Setup { address, reason } => {
                assert!(address.contains("sub pool 1") && address.contains("clash"), "{address}");
                assert!(reason.contains("exited before serving"), "{reason}");
                // Its last stderr lines say why: the port is taken.
                assert!(reason.contains("cannot listen"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(sub_pool_children().is_empty(), "left behind: {:?}", sub_pool_children());
    });
}

#[test]
fn sub_pools_die_when_their_main_pool_is_killed() {
    let mut main = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "main_pool_entry", "--nocapture", "--test-threads=1"])
        .env(MAIN_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut pids, mut tagged) = (Vec::new(), Vec::new());
    for line in BufReader::new(main.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some((_, pid)) = line.split_once("SUB_PID ") {
            pids.push(pid.trim().parse::<u32>().unwrap());
        } else if line.contains("MAIN_READY") {
            break;
        } else if line.starts_with("[sub pool ") {
            tagged.push(line);
        }
    }
    assert_eq!(pids.len(), 2);
    // The sub pools' own output (their test harness's lines) reached the main pool's, tagged.
    for tag in ["[sub pool 0 gpu0]", "[sub pool 1 gpu1]"] {
        assert!(tagged.iter().any(|line| line.starts_with(tag)), "no {tag} line in {tagged:?}");
    }
    assert!(pids.iter().all(|&pid| alive(pid)));
    main.kill().unwrap(); // SIGKILL
    main.wait().unwrap();
    assert!(all_gone(&pids, Duration::from_secs(10)), "orphans: {pids:?}");
}

/// Creates through the main pool land where the placement says; calls, streams, has, destroy
/// and cancels sent to the main pool's address reach actors in sub pools (also ones created
/// directly there); `actor_ref` resolves where an actor lives.
async fn placement_and_forwarding(direct: bool) {
    use common::actors::{Add, Count, Counter, CounterInit, Nap, NapStats, Sleeper, Source, Tick};
    use xoscar_actor::{ActorRef, Placement, actor_ref, destroy_actor, has_actor};
    let pool = actors::register(ActorPool::builder("127.0.0.1:0".parse().unwrap()))
        .direct_delivery(direct);
    let mut builder = MainPool::builder(pool).label("cpu");
    for index in 0..2 {
        builder =
            builder.sub_pool(sub_pool().label("gpu").env("XOSCAR_TEST_DEVICE", index.to_string()));
    }
    let main = builder.start().await.unwrap();
    let at = main.address().clone();
    let subs: Vec<Address> = main.sub_pools().into_iter().map(|sub| sub.address).collect();
    let init = CounterInit::default();
    let create = |placement| create_actor::<Counter>(&at, "Counter", &init).placement(placement);

    assert_eq!(create(Placement::Here).await.unwrap().address(), &at);
    let second = create(Placement::SubPool(1)).await.unwrap();
    assert_eq!(second.address(), &subs[1]);
    assert_eq!(create(Placement::Address(subs[0].clone())).await.unwrap().address(), &subs[0]);
    assert!(subs.contains(create(Placement::RandomSubPool).await.unwrap().address()));
    assert!(subs.contains(create(Placement::Label("gpu".into())).await.unwrap().address()));
    assert_eq!(create(Placement::Label("cpu".into())).await.unwrap().address(), &at);
    let (a, b) = tokio::join!(
        create(Placement::IdleLabel("gpu".into())),
        create(Placement::IdleLabel("gpu".into()))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_ne!(a.address(), b.address(), "parallel idle creates land on different pools");
    let none = create(Placement::IdleLabel("gpu".into())).await.unwrap_err();
    assert!(matches!(none, ActorError::Placement { .. }), "{none:?}");
    for missing in [Placement::SubPool(5), Placement::Label("tpu".into())] {
        assert!(matches!(create(missing).await, Err(ActorError::Placement { .. })));
    }

    // Through the main pool's address: calls, has, actor_ref, destroy.
    let via_main = ActorRef::<Counter>::new(at.clone(), second.uid());
    assert_eq!(via_main.call(Add { n: 4 }).await.unwrap().value, 4);
    assert_eq!(second.call(Add { n: 1 }).await.unwrap().value, 5, "the same actor");
    assert!(has_actor(&via_main).await.unwrap());
    assert_eq!(actor_ref::<Counter>(&at, second.uid()).await.unwrap().address(), &subs[1]);
    let direct_one =
        create_actor::<Counter>(&subs[0], "Counter", &init).uid("direct").await.unwrap();
    let found = actor_ref::<Counter>(&at, "direct").await.unwrap();
    assert_eq!(found, direct_one);
    assert_eq!(
        ActorRef::<Counter>::new(at.clone(), "direct").call(Add { n: 2 }).await.unwrap().value,
        2
    );
    destroy_actor(&ActorRef::<Counter>::new(at.clone(), a.uid())).await.unwrap();
    assert!(!has_actor(&a).await.unwrap());
    // Its idle pool is free again.
    assert_eq!(create(Placement::IdleLabel("gpu".into())).await.unwrap().address(), a.address());
    let gone = ActorRef::<Counter>::new(at.clone(), "nobody").call(Add { n: 1 }).await.unwrap_err();
    assert!(matches!(gone, ActorError::NotFound { .. }), "{gone:?}");

    // A stream through the main pool's address comes from the sub pool, item by item.
    let source = create_actor::<Source>(&at, "Source", &Empty {}).placement(Placement::SubPool(1));
    let source = ActorRef::<Source>::new(at.clone(), source.await.unwrap().uid());
    let mut ticks = source.call_stream(Count { n: 300, ..Default::default() }).await.unwrap();
    for index in 0..300 {
        assert_eq!(ticks.next().await.unwrap().unwrap(), Tick { index });
    }
    assert!(ticks.next().await.is_none());

    // A caller's timeout through the main pool cancels the handler in the sub pool.
    let sleeper =
        create_actor::<Sleeper>(&at, "Sleeper", &Empty {}).placement(Placement::SubPool(0));
    let sleeper = sleeper.await.unwrap();
    let via_main = ActorRef::<Sleeper>::new(at.clone(), sleeper.uid());
    let nap = Nap { ms: 600_000, watch: false, probe: None };
    let timed_out = via_main.call_with_timeout(nap, Duration::from_millis(200)).await.unwrap_err();
    assert!(matches!(timed_out, ActorError::CallTimedOut { .. }), "{timed_out:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sleeper.call(NapStats {}).await.unwrap().dropped == 0 {
        assert!(Instant::now() < deadline, "the cancel never reached the sub pool");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn placement_and_forwarding_in_the_main_process() {
    run(placement_and_forwarding(true));
}

#[test]
fn placement_and_forwarding_as_from_another_process() {
    run(placement_and_forwarding(false));
}

/// A main pool with one sub pool (label "gpu"), recovering as `recovery` says; records the
/// indices its exit hook saw.
async fn monitored(
    recovery: xoscar_subpool::Recovery,
) -> (MainPool, std::sync::Arc<parking_lot::Mutex<Vec<usize>>>) {
    let deaths = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let seen = deaths.clone();
    let main = actors::register(ActorPool::builder("127.0.0.1:0".parse().unwrap()))
        .sub_pool(sub_pool().label("gpu"))
        .recovery(recovery)
        .on_sub_pool_exit(move |sub, _status| seen.lock().push(sub.index))
        .start()
        .await
        .unwrap();
    (main, deaths)
}

/// Polls `check` every 20 ms until it holds, for at most `limit`; how long it took.
async fn within(limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

#[test]
fn a_killed_sub_pool_is_noticed_restarted_and_its_actors_created_again() {
    use common::actors::{Add, Counter, CounterInit, Gate, Meet};
    use xoscar_actor::{Placement, has_actor};
    use xoscar_subpool::Recovery;
    run(async {
        let (main, deaths) = monitored(Recovery::Actors).await;
        let before = main.sub_pools()[0].clone();
        let at = main.address().clone();
        let kept = create_actor::<Counter>(&at, "Counter", &CounterInit::default())
            .uid("kept")
            .placement(Placement::SubPool(0))
            .await
            .unwrap();
        assert_eq!(kept.call(Add { n: 5 }).await.unwrap().value, 5);
        let gate = create_actor::<Gate>(&at, "Gate", &Empty {}).placement(Placement::SubPool(0));
        let gate = gate.await.unwrap();
        // Waits for a second party that never comes: in flight when the pool dies.
        let waiting = tokio::spawn(async move { gate.call(Meet { parties: 2 }).await });
        tokio::time::sleep(Duration::from_millis(100)).await;

        main.kill_sub_pool(0).unwrap();
        let failed = tokio::time::timeout(Duration::from_secs(5), waiting).await;
        let error = failed.expect("the waiting call fails at once").unwrap().unwrap_err();
        assert!(
            matches!(error, ActorError::Connection(xoscar_pool::PoolError::ConnectionLost { .. })),
            "{error:?}"
        );
        let noticed = within(Duration::from_secs(3), || deaths.lock().len() == 1).await;
        assert!(noticed < Duration::from_secs(3), "noticed after {noticed:?}");
        assert_eq!(*deaths.lock(), [0]);
        tokio::time::timeout(Duration::from_secs(30), main.wait_recovered())
            .await
            .expect("recovered");

        let after = main.sub_pools()[0].clone();
        assert_eq!(
            (&after.address, &after.internal, after.index),
            (&before.address, &before.internal, 0)
        );
        assert_ne!(after.pid, before.pid);
        assert!(!alive(before.pid));
        // The actor exists again under its uid; its state is lost.
        assert!(has_actor(&kept).await.unwrap());
        assert_eq!(kept.call(Add { n: 1 }).await.unwrap().value, 1);
    });
}

#[test]
fn recovery_by_process_restarts_without_actors_and_off_leaves_it_gone() {
    use common::actors::{Counter, CounterInit};
    use xoscar_actor::{Placement, has_actor};
    use xoscar_subpool::Recovery;
    run(async {
        let (main, deaths) = monitored(Recovery::Process).await;
        let at = main.address().clone();
        let counter = create_actor::<Counter>(&at, "Counter", &CounterInit::default())
            .placement(Placement::SubPool(0));
        let counter = counter.await.unwrap();
        main.kill_sub_pool(0).unwrap();
        tokio::time::timeout(Duration::from_secs(30), main.wait_recovered())
            .await
            .expect("recovered");
        assert_eq!(*deaths.lock(), [0]);
        assert_eq!(main.sub_pools()[0].address, *counter.address(), "same address");
        assert!(!has_actor(&counter).await.unwrap(), "its actors are gone");
        drop(main);

        let (main, deaths) = monitored(Recovery::Off).await;
        let pid = main.sub_pools()[0].pid;
        main.kill_sub_pool(0).unwrap();
        within(Duration::from_secs(3), || deaths.lock().len() == 1).await;
        tokio::time::timeout(Duration::from_secs(5), main.wait_recovered())
            .await
            .expect("nothing to wait for");
        assert!(main.sub_pools().is_empty() && !alive(pid));
        let placed = create_actor::<Counter>(main.address(), "Counter", &CounterInit::default())
            .placement(Placement::SubPool(0))
            .await;
        assert!(matches!(placed, Err(ActorError::Placement { .. })), "{placed:?}");
    });
}

#[test]
fn sub_pools_are_added_and_removed_at_run_time() {
    use common::actors::{Add, Counter, CounterInit};
    use xoscar_actor::Placement;
    run(async {
        let main = actors::register(ActorPool::builder("127.0.0.1:0".parse().unwrap()))
            .sub_pool(sub_pool().label("first"))
            .start()
            .await
            .unwrap();
        let added = main.add_sub_pool(sub_pool().label("late")).await.unwrap();
        assert_eq!((added.index, added.label.as_str()), (1, "late"));
        let at = main.address().clone();
        let create = |placement| {
            create_actor::<Counter>(&at, "Counter", &CounterInit::default()).placement(placement)
        };
        let late = create(Placement::Label("late".into())).await.unwrap();
        assert_eq!(late.address(), &added.address);
        assert_eq!(late.call(Add { n: 3 }).await.unwrap().value, 3);
        let first = main.sub_pools()[0].clone();
        main.remove_sub_pool(0).unwrap();
        assert!(all_gone(&[first.pid], Duration::from_secs(10)));
        assert_eq!(main.sub_pools(), vec![added.clone()]);
        let removed = create(Placement::SubPool(0)).await.unwrap_err();
        assert!(matches!(removed, ActorError::Placement { .. }), "{removed:?}");
        assert_eq!(create(Placement::SubPool(1)).await.unwrap().address(), &added.address);
    });
}

/// How many sockets of this host are bound to `address`'s path (its listener and the
/// connections it accepted), from `/proc/net/unix`.
fn unix_sockets_at(address: &Address) -> usize {
    let Address::Unix(path) = address else { return 0 };
    let path = path.to_string_lossy().into_owned();
    let table = std::fs::read_to_string("/proc/net/unix").unwrap();
    table.lines().filter(|line| line.trim_end().ends_with(&path)).count()
}

#[test]
fn sub_pools_call_each_other_and_the_main_pool_over_unix_sockets() {
    use common::actors::{Add, Counter, CounterInit, Forward, Relay};
    use xoscar_actor::Placement;
    run(async {
        let main = with_sub_pools(2).await.unwrap();
        let subs = main.sub_pools();
        let at = main.address().clone();
        let main_internal = main
            .addresses()
            .iter()
            .find(|a| matches!(a, Address::Unix(_)))
            .expect("a main pool with sub pools listens on a Unix socket too")
            .clone();
        let relay = create_actor::<Relay>(&at, "Relay", &Empty {}).placement(Placement::SubPool(0));
        let relay = relay.await.unwrap();
        let init = CounterInit::default();
        let far = create_actor::<Counter>(&at, "Counter", &init).placement(Placement::SubPool(1));
        let far = far.await.unwrap();
        let home = create_actor::<Counter>(&at, "Counter", &init).await.unwrap();
        assert_eq!(home.call(Add { n: 0 }).await.unwrap().value, 0);
        let (sub_before, main_before) =
            (unix_sockets_at(&subs[1].internal), unix_sockets_at(&main_internal));
        // Sub pool 0 calls sub pool 1, then the main pool: each over a new Unix connection.
        let forward = |target| relay.call(Forward { target: Some(target), n: 1 });
        assert_eq!(forward(far.clone()).await.unwrap().value, 1);
        assert_eq!(forward(home.clone()).await.unwrap().value, 1);
        assert_eq!(unix_sockets_at(&subs[1].internal), sub_before + 1, "sub pool 0 → 1 over uds");
        assert_eq!(unix_sockets_at(&main_internal), main_before + 1, "sub pool 0 → main over uds");
    });
}

/// Set when this binary runs as a main pool with a shared secret.
const SECURED_ENV: &str = "XOSCAR_TEST_SECURED_MAIN";
const SECRET: &str = "test-secret-3f9a";

/// In the child run by `a_shared_secret_guards_a_main_pool_and_its_sub_pools`: the secret is
/// set by the builder and `configure`, not the environment, so the sub pool can only have it
/// from its main pool. Prints what the test checks, then serves until killed.
#[test]
fn secured_main_pool_entry() {
    use xoscar_actor::configure;
    use xoscar_pool::PoolConfig;
    use xoscar_transport::{AuthToken, TransportConfig};
    if std::env::var_os(SECURED_ENV).is_none() {
        return;
    }
    run(async {
        let token = AuthToken::new(SECRET).unwrap();
        let transport = TransportConfig::default().auth_token(Some(token.clone()));
        configure(PoolConfig::default().transport(transport)).unwrap();
        let main = actors::register(ActorPool::builder("127.0.0.1:0".parse().unwrap()))
            .auth_token(token)
            .sub_pool(sub_pool().label("secured"))
            .start()
            .await
            .unwrap();
        let sub = main.sub_pools().remove(0);
        // Through the main pool (main to sub pool, authenticated both ways).
        let reader = create_actor::<EnvReader>(&main.addresses()[0], "EnvReader", &Empty {})
            .placement(xoscar_actor::Placement::SubPool(0))
            .await
            .unwrap();
        let seen = reader.call(ReadEnv { key: "XOSCAR_AUTH_TOKEN".into() }).await.unwrap();
        println!("SUB_TOKEN {}", seen.value);
        println!("ADDRESSES {} {}", main.addresses()[0], sub.address);
        println!("SECURED_READY");
        std::future::pending::<()>().await;
    });
}

#[test]
fn a_shared_secret_guards_a_main_pool_and_its_sub_pools() {
    let mut main = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "secured_main_pool_entry", "--nocapture", "--test-threads=1"])
        .env(SECURED_ENV, "1")
        .env_remove("XOSCAR_AUTH_TOKEN")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut token, mut addresses) = (None, Vec::new());
    for line in BufReader::new(main.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some((_, value)) = line.split_once("SUB_TOKEN ") {
            token = Some(value.trim().to_owned());
        } else if let Some((_, list)) = line.split_once("ADDRESSES ") {
            addresses = list.split_whitespace().map(|a| a.parse::<Address>().unwrap()).collect();
        } else if line.contains("SECURED_READY") {
            break;
        }
    }
    let result = std::panic::catch_unwind(|| {
        assert_eq!(token.as_deref(), Some(SECRET), "the sub pool got its main pool's secret");
        assert_eq!(addresses.len(), 2);
        run(async {
            // This process has no secret: the main pool and the sub pool both refuse it.
            for address in &addresses {
                let create = create_actor::<EnvReader>(address, "EnvReader", &Empty {});
                let error = create.await.unwrap_err();
                assert!(error.to_string().contains("XOSCAR_AUTH_TOKEN"), "{address}: {error}");
            }
            // A main pool whose secret differs from this process's caller's cannot start
            // sub pools: they would refuse its calls.
            let token = xoscar_transport::AuthToken::new("another-secret-0123456789").unwrap();
            let builder = actors::register(ActorPool::builder("127.0.0.1:0".parse().unwrap()))
                .auth_token(token)
                .sub_pool(sub_pool());
            match builder.start().await.unwrap_err() {
                ActorError::Setup { reason, .. } => assert!(reason.contains("differs"), "{reason}"),
                other => panic!("{other:?}"),
            }
        });
    });
    main.kill().unwrap();
    main.wait().unwrap();
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
