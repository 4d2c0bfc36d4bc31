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
