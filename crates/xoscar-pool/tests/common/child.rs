//! Servers in a child process: the test binary re-runs itself with an environment flag, so a
//! test can count this process's descriptors without the servers' own, and kill the servers
//! with SIGKILL.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use xoscar_pool::ServerConfig;
use xoscar_pool::testing::Echo;
use xoscar_transport::Address;

use super::{Sleepy, start};

/// Set in the child: `<tcp listeners>,<unix listeners>,<echo|sleepy>`.
pub const CHILD_ENV: &str = "XOSCAR_TEST_CHILD_SERVERS";

/// The name of the `#[test]` each binary defines to call [`child_main`].
pub const CHILD_TEST: &str = "child_server_entry";

/// The child's side: serve what [`CHILD_ENV`] asks for, print each address, then wait to be
/// killed. Returns at once in the parent (the variable is unset there).
pub fn child_main() {
    let Ok(spec) = std::env::var(CHILD_ENV) else { return };
    let parts: Vec<&str> = spec.split(',').collect();
    let (tcp, unix, handler): (usize, usize, &str) =
        (parts[0].parse().unwrap(), parts[1].parse().unwrap(), parts[2]);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let mut servers = Vec::new();
        let mut addresses: Vec<Address> =
            (0..tcp).map(|_| "127.0.0.1:0".parse().unwrap()).collect();
        for n in 0..unix {
            let path =
                std::env::temp_dir().join(format!("xoscar-child-{}-{n}.sock", std::process::id()));
            addresses.push(Address::unix(path));
        }
        for address in addresses {
            let server = match handler {
                "sleepy" => start(&address, Sleepy::default(), ServerConfig::default()).await,
                _ => start(&address, Echo, ServerConfig::default()).await,
            };
            println!("ADDR {}", server.local_addr());
            servers.push(server);
        }
        println!("READY");
        std::future::pending::<()>().await;
    });
}

/// The child server process; SIGKILLed when dropped, so a failing test leaves no orphan.
pub struct ServerProcess(Child);

impl ServerProcess {
    /// SIGKILLs the child and reaps it.
    pub fn kill(mut self) {
        self.kill_now();
    }

    fn kill_now(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill_now();
    }
}

/// The parent's side: starts the child and returns it with the addresses it serves.
pub fn spawn_servers(tcp: usize, unix: usize, handler: &str) -> (ServerProcess, Vec<Address>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{tcp},{unix},{handler}"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the child server process");
    let stdout = child.stdout.take().unwrap();
    let child = ServerProcess(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut addresses = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            // The harness's own "test ... " text may precede the first line on the same line.
            if let Some(at) = line.find("ADDR ") {
                addresses.push(line[at + 5..].parse::<Address>().unwrap());
            } else if line.ends_with("READY") {
                let _ = tx.send(addresses);
                return;
            }
        }
    });
    let addresses =
        rx.recv_timeout(Duration::from_secs(60)).expect("the child server never got ready");
    (child, addresses)
}
