//! Test harness shared by the tests of the xoscar-rs crates (a dev-dependency only, outside
//! the layer order): every test runs under an outer real-time bound, so none can hang.

pub mod logs;
pub mod netns;
pub mod raw_caller;

use std::future::Future;
use std::time::Duration;

/// Every test's outer bound (real time), so none can hang.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `future` on a fresh current-thread runtime under [`TEST_TIMEOUT`] of real time.
pub fn run<F: Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, future).await.expect("test exceeded its outer timeout")
    })
}

/// Runs `future` on a current-thread runtime whose clock is paused (auto-advancing when idle),
/// bounded by a watchdog thread in real time. In-process transport only: paused time and
/// real sockets do not mix.
pub fn run_paused<F: Future>(future: F) -> F::Output {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        // Disconnected means the test panicked: let its message through.
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(TEST_TIMEOUT)
        {
            eprintln!("paused-clock test exceeded its outer timeout");
            std::process::abort();
        }
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let output = runtime.block_on(future);
    let _ = done_tx.send(());
    output
}
