//! Sub pools in child processes (issue 9, first part): each starts with its own environment,
//! label and addresses; a sub pool that cannot start fails the main pool's start, naming it,
//! and leaves no process behind; sub pools die with their main pool, also when its process is
//! SIGKILLed (checked by pid). Its own binary: it counts processes.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::actors::{self, Empty, EnvReader, EnvValue, ReadEnv};
use common::run;
use xoscar_actor::{ActorError, ActorPool, SubPool, create_actor, run_if_sub_pool};
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

async fn with_sub_pools(count: usize) -> Result<ActorPool, ActorError> {
    let mut builder = actors::register(ActorPool::builder("127.0.0.1:0".parse().unwrap()));
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
    let mut pids = Vec::new();
    for line in BufReader::new(main.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some((_, pid)) = line.split_once("SUB_PID ") {
            pids.push(pid.trim().parse::<u32>().unwrap());
        } else if line.contains("MAIN_READY") {
            break;
        }
    }
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|&pid| alive(pid)));
    main.kill().unwrap(); // SIGKILL
    main.wait().unwrap();
    assert!(all_gone(&pids, Duration::from_secs(10)), "orphans: {pids:?}");
}
