//! A fixed amount of call work, for counting instructions with callgrind (repeatable where wall
//! time on a shared VM is not) and for per-process CPU accounting across two processes.
//!
//! ```text
//! fixed_calls local  <tcp|uds|inproc> <calls> <in-flight>   server and caller in one process
//! fixed_calls server <address> <seconds>                      serve Echo, print the address
//! fixed_calls client <address> <calls> <in-flight>            call a running server
//! ```
//!
//! For example `valgrind --tool=callgrind target/release/examples/fixed_calls local inproc 20000
//! 64` counts the instructions of 20,000 calls with 64 in flight; run it before and after a
//! change and compare the totals (`callgrind_annotate` breaks them down by function).

use std::time::{Duration, Instant};

use bytes::Bytes;
use xoscar_pool::testing::Echo;
use xoscar_pool::{Message, Pool, PoolConfig, ServerConfig, serve};
use xoscar_transport::{Address, TransportConfig, listen};

fn arg<T: std::str::FromStr>(args: &[String], at: usize, default: T) -> T {
    args.get(at).and_then(|text| text.parse().ok()).unwrap_or(default)
}

/// `calls` calls of 16 bytes spread over `in_flight` concurrent callers.
async fn run_calls(endpoint: &Address, calls: u64, in_flight: u64) {
    let pool = Pool::new(PoolConfig::default()).expect("pool");
    pool.call(endpoint, Message::default()).await.expect("first call");
    let payload = Bytes::from(vec![0x5A; 16]);
    let started = Instant::now();
    let callers: Vec<_> = (0..in_flight)
        .map(|_| {
            let (pool, endpoint, payload) = (pool.clone(), endpoint.clone(), payload.clone());
            tokio::spawn(async move {
                for _ in 0..calls / in_flight {
                    let request = Message::new(Bytes::new(), [payload.clone()]);
                    pool.call(&endpoint, request).await.expect("call");
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("caller");
    }
    let per_call = started.elapsed().as_nanos() as f64 / calls as f64;
    eprintln!("{endpoint}: {per_call:.0} ns per call");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
    let mode = args.get(1).map(String::as_str).unwrap_or("local");
    runtime.block_on(async {
        match mode {
            "server" => {
                let address: Address = args[2].parse().expect("address");
                let listener = listen(&address, &TransportConfig::default()).await.expect("listen");
                let server = serve(listener, Echo, ServerConfig::default()).expect("serve");
                println!("{}", server.local_addr());
                tokio::time::sleep(Duration::from_secs(arg(&args, 3, 30))).await;
            }
            "client" => {
                let endpoint: Address = args[2].parse().expect("address");
                run_calls(&endpoint, arg(&args, 3, 100_000), arg(&args, 4, 64)).await;
            }
            _ => {
                let address: Address = match args.get(2).map(String::as_str).unwrap_or("inproc") {
                    "tcp" => "127.0.0.1:0".parse().expect("address"),
                    "uds" => Address::unix(
                        std::env::temp_dir()
                            .join(format!("fixed-calls-{}.sock", std::process::id())),
                    ),
                    _ => Address::inproc("fixed-calls"),
                };
                let listener = listen(&address, &TransportConfig::default()).await.expect("listen");
                let server = serve(listener, Echo, ServerConfig::default()).expect("serve");
                run_calls(server.local_addr(), arg(&args, 3, 20_000), arg(&args, 4, 64)).await;
            }
        }
    });
}
