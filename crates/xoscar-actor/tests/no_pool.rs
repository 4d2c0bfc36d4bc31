//! A process with no actor pool of its own still creates, calls, tells, checks and destroys
//! actors elsewhere: this binary never starts a pool (the child process does).

mod common;

use common::actors::{Add, Counter, CounterInit, Get, Total};
use common::child::{self, spawn_pool};
use common::run;
use xoscar_actor::{ActorRef, caller, create_actor, destroy_actor, has_actor};

#[test]
fn child_pool_entry() {
    child::child_main();
}

#[test]
fn a_process_without_a_pool_calls_actors_in_another_process() {
    let child = spawn_pool("127.0.0.1:0");
    let address = child.address.clone();
    run(async move {
        let init = CounterInit { start: 1, ..Default::default() };
        let counter = create_actor::<Counter>(&address, "Counter", &init).uid("c").await.unwrap();
        counter.tell(Add { n: 2 }).await.unwrap();
        assert_eq!(counter.call(Get {}).await.unwrap(), Total { value: 3 });
        // A ref made from the address and uid alone reaches the same actor.
        let again = ActorRef::<Counter>::new(address.clone(), "c");
        assert_eq!(again.call(Add { n: 4 }).await.unwrap(), Total { value: 7 });
        assert!(has_actor(&again).await.unwrap());
        destroy_actor(&again).await.unwrap();
        assert!(!has_actor(&counter).await.unwrap());
        assert_eq!(caller().unwrap().stats().open_connections, 1, "one connection, reused");
    });
    drop(child);
}
