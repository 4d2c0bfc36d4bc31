//! The actor behaviours of `actors.rs` against a pool in another process over TCP; the
//! scenarios' own pools listen on TCP too, so the child dials back into this process. Its own
//! binary: it runs a child process.

mod common;

use common::child::{self, spawn_pool};
use common::{Setup, Transport, run, scenarios};

#[test]
fn child_pool_entry() {
    child::child_main();
}

#[test]
fn every_behaviour_against_a_pool_in_another_process() {
    let child = spawn_pool("127.0.0.1:0");
    let setup = Setup {
        address: child.address.clone(),
        remote_pid: child.pid,
        pool: None,
        local_transport: Transport::Tcp,
    };
    assert_ne!(setup.remote_pid, std::process::id());
    run(async {
        scenarios::create_call_tell_by_name(&setup).await;
        scenarios::create_from_inside_an_actor(&setup).await;
        scenarios::create_errors(&setup).await;
        scenarios::calls_within_and_across_pools(&setup).await;
        scenarios::nested_errors_carry_every_pool(&setup).await;
        scenarios::unknown_uid_message_and_bodies(&setup).await;
        scenarios::has_destroy_and_recreate(&setup).await;
        scenarios::hooks_call_actors_and_tell_themselves(&setup).await;
        scenarios::concurrent_actor_runs_handlers_together(&setup).await;
        scenarios::a_b_a_chains_do_not_deadlock(&setup).await;
        scenarios::a_panicking_handler_stops_only_its_actor(&setup).await;
        scenarios::buffers_small_and_large_round_trip(&setup).await;
        scenarios::explicit_cancel_reaches_the_handler(&setup).await;
        scenarios::batches_answer_in_order_with_per_item_errors(&setup).await;
        scenarios::streams_items_with_backpressure_and_cancel(&setup).await;
        scenarios::deadlines_time_out_and_skip_late_work(&setup).await;
    });
}

#[test]
fn killing_the_remote_process_fails_its_calls_in_flight_with_connection_lost() {
    let child = spawn_pool("127.0.0.1:0");
    let address = child.address.clone();
    run(async move {
        use common::actors::{Empty, Gate, Meet};
        use xoscar_actor::{ActorError, create_actor};
        use xoscar_pool::PoolError;
        let gate = create_actor::<Gate>(&address, "Gate", &Empty {}).await.unwrap();
        // Waits for a second party that never comes.
        let pending = tokio::spawn(async move { gate.call(Meet { parties: 2 }).await });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        drop(child); // SIGKILL
        let error = tokio::time::timeout(std::time::Duration::from_secs(20), pending)
            .await
            .expect("the call fails well within the bound")
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(error, ActorError::Connection(PoolError::ConnectionLost { sent: true, .. })),
            "{error:?}"
        );
    });
}
