//! Debug thresholds under tokio's paused clock: a serial actor held by one handler past the
//! hold threshold, and a call past the slow-call threshold (counted from the mailbox), are
//! logged with the actor, its uid, the message type and the time; nothing else is. The
//! environment variables set them too, and a malformed one is an error naming it (in a child
//! process, since the environment is process-wide). Every call runs in a `tracing` span that
//! names the actor's uid, the message type and the caller.

mod common;

use std::time::Duration;

use common::{Transport, address, run, run_paused};
use xoscar_actor::{
    Actor, ActorError, ActorPool, Context, ENV_HOLD, ENV_SLOW_CALL, Failure, Handler,
    RemoteMessages,
};
use xoscar_testkit::logs::Captured;

struct Napper;

impl Actor for Napper {}

/// Sleeps this many milliseconds.
struct Nap(u64);

impl Handler<Nap> for Napper {
    type Reply = ();
    async fn handle(&mut self, nap: Nap, _: &mut Context<Self>) -> Result<(), Failure> {
        tokio::time::sleep(Duration::from_millis(nap.0)).await;
        Ok(())
    }
}

fn held_or_slow(lines: &[String]) -> Vec<&String> {
    lines
        .iter()
        .filter(|line| line.starts_with("serial actor held") || line.starts_with("slow call"))
        .collect()
}

#[test]
fn long_holds_and_slow_calls_are_logged_with_actor_message_and_time() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.clone());
    run_paused(async {
        let pool = ActorPool::builder(address(Transport::Inproc))
            .hold_threshold(Duration::from_millis(100))
            .slow_call_threshold(Duration::from_millis(150))
            .start()
            .await
            .unwrap();
        let napper = pool.create(Napper).uid("napper").await.unwrap();
        napper.call(Nap(50)).await.unwrap();
        assert!(held_or_slow(&captured.take()).is_empty(), "under both thresholds");

        napper.call(Nap(120)).await.unwrap();
        let lines = captured.take();
        let logged = held_or_slow(&lines);
        assert_eq!(logged.len(), 1, "{lines:?}");
        assert!(logged[0].starts_with("serial actor held"), "{logged:?}");
        for part in ["uid=\"napper\"", "Napper", "message_type=\"debug::Nap\"", "held_ms=120"] {
            assert!(logged[0].contains(part), "{part} in {}", logged[0]);
        }

        // 50 ms of handling after 120 ms in the mailbox: a slow call, but no long hold.
        let first = tokio::spawn({
            let napper = napper.clone();
            async move { napper.call(Nap(120)).await }
        });
        tokio::task::yield_now().await;
        napper.call(Nap(50)).await.unwrap();
        first.await.unwrap().unwrap();
        let lines = captured.take();
        let slow: Vec<_> =
            held_or_slow(&lines).into_iter().filter(|l| l.starts_with("slow call")).collect();
        assert_eq!(slow.len(), 1, "{lines:?}");
        assert!(slow[0].contains("took_ms=170"), "{}", slow[0]);
    });
}

/// Set in the child: which case of the environment to check.
const CHILD_ENV: &str = "XOSCAR_TEST_DEBUG_ENV_CHILD";

#[test]
fn env_child() {
    let Ok(case) = std::env::var(CHILD_ENV) else { return };
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.clone());
    run_paused(async move {
        let started = ActorPool::start(address(Transport::Inproc)).await;
        if case == "malformed" {
            match started {
                Err(ActorError::Setup { reason, .. }) => {
                    assert!(reason.contains(ENV_HOLD), "{reason}");
                }
                other => panic!("{other:?}"),
            }
            return;
        }
        let pool = started.unwrap();
        let napper = pool.create(Napper).await.unwrap();
        napper.call(Nap(300)).await.unwrap();
        let lines = captured.take();
        assert_eq!(held_or_slow(&lines).len(), 2, "both set by the environment: {lines:?}");
    });
}

fn run_child(case: &str, env: &[(&str, &str)]) {
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "env_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, case)
        .envs(env.iter().copied())
        .status()
        .expect("run the child");
    assert!(status.success(), "the {case} child failed");
}

#[test]
fn the_environment_sets_the_thresholds_and_a_malformed_value_is_an_error() {
    run_child("valid", &[(ENV_HOLD, "0.25"), (ENV_SLOW_CALL, "0.2")]);
    run_child("malformed", &[(ENV_HOLD, "soon")]);
}

struct Chatty;

#[derive(Clone, PartialEq, prost::Message)]
struct Say {
    #[prost(string, tag = "1")]
    word: String,
}

impl Actor for Chatty {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Say>("Say");
    }
}

impl Handler<Say> for Chatty {
    type Reply = u32;
    async fn handle(&mut self, say: Say, _: &mut Context<Self>) -> Result<u32, Failure> {
        tracing::info!(word = %say.word, "chatty says");
        Ok(1)
    }
}

#[test]
fn every_call_runs_in_a_span_naming_the_actor_uid_the_message_type_and_the_peer() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.clone());
    run(async {
        let remote = ActorPool::builder(address(Transport::Tcp))
            .direct_delivery(false)
            .start()
            .await
            .unwrap();
        let chatty = remote.create(Chatty).await.unwrap();
        chatty.call(Say { word: "remote".into() }).await.unwrap();
        let local = ActorPool::start(address(Transport::Inproc)).await.unwrap();
        let nearby = local.create(Chatty).await.unwrap();
        nearby.call(Say { word: "local".into() }).await.unwrap();

        let said = captured.lines_with("chatty says");
        assert_eq!(said.len(), 2, "{said:?}");
        let span = |uid: &str, peer: &str| {
            format!(r#"in actor_call{{uid="{uid}" message_type="debug::Say" peer="{peer}"#)
        };
        assert!(said[0].contains(&span(chatty.uid(), "127.0.0.1:")), "{}", said[0]);
        assert!(said[1].contains(&span(nearby.uid(), "in-process\"")), "{}", said[1]);
    });
}
