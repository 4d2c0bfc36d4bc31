//! The edges of a runtime's life: a runtime without a timer, and a pool first used while its
//! runtime shuts down. Each gives the caller an error at once: no spin, no deadlock, no call
//! left waiting forever. Each case runs on its own thread, watched from the test thread, so a
//! hang fails the test instead of hanging it.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use common::{echo_server, header};
use xoscar_pool::{Pool, PoolConfig, PoolError};
use xoscar_transport::Address;

const BOUND: Duration = Duration::from_secs(20);

/// Runs `work` on its own thread; fails if it has not finished within [`BOUND`].
fn within_bound<T: Send + 'static>(what: &str, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(work());
    });
    rx.recv_timeout(BOUND).unwrap_or_else(|_| panic!("{what}: hung (a spin or a deadlock)"))
}

#[test]
fn a_runtime_without_a_timer_gets_an_error_instead_of_a_spin() {
    let endpoint = echo_server();
    let result = within_bound("a call on a runtime without enable_time", move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
        let pool = Pool::new(PoolConfig::default()).unwrap();
        runtime.block_on(pool.call(&endpoint, header("no timer")))
    });
    let error = result.unwrap_err();
    assert!(matches!(error, PoolError::DialAborted { .. }), "{error}");
    assert!(error.is_retry_safe());
}

/// Polls a call when dropped, as a task dropped by a runtime's shutdown would.
struct CallOnDrop {
    pool: Pool,
    endpoint: Address,
    outcome: Arc<Mutex<Option<Result<(), PoolError>>>>,
}

impl Drop for CallOnDrop {
    fn drop(&mut self) {
        let mut call = Box::pin(self.pool.call(&self.endpoint, header("during shutdown")));
        let mut context = Context::from_waker(Waker::noop());
        for _ in 0..1_000 {
            if let Poll::Ready(result) = Pin::new(&mut call).poll(&mut context) {
                *self.outcome.lock().unwrap() = Some(result.map(drop));
                return;
            }
            std::thread::yield_now();
        }
    }
}

#[test]
fn first_use_of_a_pool_while_its_runtime_shuts_down_is_an_error_not_a_deadlock() {
    let endpoint = echo_server();
    let outcome = Arc::new(Mutex::new(None));
    let seen = outcome.clone();
    within_bound("first use during shutdown", move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let pool = Pool::new(PoolConfig::default()).unwrap();
        let on_drop = CallOnDrop { pool: pool.clone(), endpoint, outcome: seen };
        runtime.spawn(async move {
            let _on_drop = on_drop;
            std::future::pending::<()>().await;
        });
        // Let the task start, then shut the runtime down: the task is dropped and its drop
        // makes the pool's first call on this runtime.
        runtime.block_on(tokio::task::yield_now());
        drop(runtime);
        assert_eq!(pool.stats().runtimes, 0, "the dead runtime left no state in the pool");
    });
    let outcome = outcome.lock().unwrap().take().expect("the call finished on its first polls");
    let error = outcome.unwrap_err();
    assert!(matches!(error, PoolError::DialAborted { .. }), "{error}");
}
