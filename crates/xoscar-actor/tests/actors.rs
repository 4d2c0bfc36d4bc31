//! xoscar's actor behaviours (create, create from inside an actor, create errors, calls within
//! and across pools, nested errors, unknown uid, tell, has/destroy and re-create, hooks that
//! call actors, concurrent actor, A → B → A), each over in-process, Unix socket and TCP
//! transports. The "remote" pool is reached through its listener (`direct_delivery(false)`),
//! exactly as from another process; the scenarios' own pools directly. `process.rs` runs the
//! same scenarios against a pool in a child process.

mod common;

use common::{Setup, Transport, run, scenarios};

/// Runs each scenario once per transport, each as its own test.
macro_rules! over_transports {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use super::*;
            #[test]
            fn inproc() {
                run(async { scenarios::$scenario(&Setup::in_process(Transport::Inproc).await).await })
            }
            #[test]
            fn uds() {
                run(async { scenarios::$scenario(&Setup::in_process(Transport::Uds).await).await })
            }
            #[test]
            fn tcp() {
                run(async { scenarios::$scenario(&Setup::in_process(Transport::Tcp).await).await })
            }
        }
    )*};
}

over_transports!(
    create_call_tell_by_name,
    create_from_inside_an_actor,
    create_errors,
    calls_within_and_across_pools,
    nested_errors_carry_every_pool,
    unknown_uid_message_and_bodies,
    has_destroy_and_recreate,
    hooks_call_actors_and_tell_themselves,
    concurrent_actor_runs_handlers_together,
    a_b_a_chains_do_not_deadlock,
    a_panicking_handler_stops_only_its_actor,
    buffers_small_and_large_round_trip,
    explicit_cancel_reaches_the_handler,
    batches_answer_in_order_with_per_item_errors,
    streams_items_with_backpressure_and_cancel,
    deadlines_time_out_and_skip_late_work,
);

/// `call_named`: the message named as the actor type declared it, its body as bytes, reaches
/// an actor of a pool of this process (decoded as a remote caller's would be) and of a pool
/// reached through its listener; unknown names, bad bodies and unknown uids fail clearly.
#[test]
fn calls_by_message_name_reach_actors_here_and_through_a_listener() {
    use common::actors::{Add, Counter, Total};
    use prost::Message as _;
    use xoscar_actor::{ActorError, ActorPool, call_named};
    run(async {
        for transport in [Transport::Inproc, Transport::Tcp] {
            let here = common::actors::register(ActorPool::builder(common::address(transport)))
                .start()
                .await
                .unwrap();
            let listener = common::remote_pool(transport).await;
            for pool in [&here, &listener] {
                pool.create(Counter::new(5)).uid("named").await.unwrap();
                let at = pool.address();
                let body = Add { n: 2 }.encode_to_vec().into();
                let reply = call_named(at, "named", "Add", body).await.unwrap();
                assert_eq!(Total::decode(reply).unwrap().value, 7, "{at}");
                let nope = call_named(at, "named", "Nope", Default::default()).await;
                assert!(matches!(nope, Err(ActorError::NoHandler { .. })), "{at}: {nope:?}");
                let bad = call_named(at, "named", "Add", vec![0xff, 0xff].into()).await;
                assert!(matches!(bad, Err(ActorError::BadMessage { .. })), "{at}: {bad:?}");
                // A body that did not decode failed its call alone: the actor goes on.
                let body = Add { n: 1 }.encode_to_vec().into();
                let reply = call_named(at, "named", "Add", body).await.unwrap();
                assert_eq!(Total::decode(reply).unwrap().value, 8, "{at}");
                let nobody = call_named(at, "nobody", "Add", Default::default()).await;
                assert!(matches!(nobody, Err(ActorError::NotFound { .. })), "{at}: {nobody:?}");
            }
        }
    });
}
