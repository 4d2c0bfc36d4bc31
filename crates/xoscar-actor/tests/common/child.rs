//! An actor pool in a child process: the test binary re-runs itself with an environment flag,
//! the child prints its pool's address and pid, and the parent kills it with SIGKILL.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use xoscar_actor::ActorPool;
use xoscar_transport::Address;

use super::actors;

/// Set in the child: the address its pool listens on.
pub const CHILD_ENV: &str = "XOSCAR_TEST_CHILD_POOL";

/// The name of the `#[test]` each binary defines to call [`child_main`].
pub const CHILD_TEST: &str = "child_pool_entry";

/// The child's side: start a pool with every test type, print `ADDR <address>` and
/// `PID <pid>`, then serve until killed. Returns at once in the parent.
pub fn child_main() {
    let Ok(address) = std::env::var(CHILD_ENV) else { return };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let address: Address = address.parse().expect("a valid child pool address");
        let pool = actors::register(ActorPool::builder(address)).start().await.expect("start");
        println!("ADDR {}", pool.address());
        println!("PID {}", std::process::id());
        println!("READY");
        std::future::pending::<()>().await;
    });
}

/// The child pool process; SIGKILLed when dropped, so a failing test leaves no orphan.
pub struct PoolProcess {
    child: Child,
    pub address: Address,
    pub pid: u32,
}

impl Drop for PoolProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the child pool at `address` (e.g. `127.0.0.1:0`) and waits for it to serve.
pub fn spawn_pool(address: &str) -> PoolProcess {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, address)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child pool process");
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut process = PoolProcess { child, address: Address::inproc("unset"), pid: 0 };
    loop {
        let line = lines_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the child pool did not report READY within 30 s");
        // The test harness may print "test child_pool_entry ... " before the first line.
        if let Some((_, address)) = line.split_once("ADDR ") {
            process.address = address.parse().expect("the child printed an address");
        } else if let Some((_, pid)) = line.split_once("PID ") {
            process.pid = pid.parse().expect("the child printed a pid");
        } else if line.ends_with("READY") {
            return process;
        }
    }
}
