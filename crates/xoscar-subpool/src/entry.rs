//! A sub pool's process: serve the pool its main pool asked for, until the main pool goes.

use std::io::Read;

use xoscar_transport::Address;

use std::sync::Arc;

use xoscar_actor::extension::Ingress;
use xoscar_actor::{ActorPool, ActorPoolBuilder};

use crate::neighbourhood::Neighbourhood;
use crate::spec::{ENV_ADDRESS, ENV_INTERNAL, ENV_MAIN, ENV_PARENT, ENV_SUB_POOL, READY};

/// The one line a program with sub pools starts `main` with (plain or `#[tokio::main]`). In
/// a sub pool (the environment variable [`crate::ENV_SUB_POOL`] is set by its main pool) it
/// builds the pool with `configure` (register there the same actor types as the main pool),
/// serves it on a runtime of its own, and exits when the main pool goes (its process ends,
/// even by SIGKILL); it never returns. Anywhere else it returns at once.
///
/// ```no_run
/// fn pools(builder: xoscar_actor::ActorPoolBuilder) -> xoscar_actor::ActorPoolBuilder {
///     builder // .register("Worker", |init: WorkerInit| Ok(Worker::new(init)))
/// }
///
/// fn main() {
///     xoscar_subpool::run_if_sub_pool(pools);
///     // ... the main process: MainPool::builder(pools(ActorPool::builder(address)))
///     //     .sub_pool(..).start()
/// }
/// ```
pub fn run_if_sub_pool(configure: fn(ActorPoolBuilder) -> ActorPoolBuilder) {
    let Some(index) = std::env::var_os(ENV_SUB_POOL) else { return };
    let index = index.to_string_lossy().into_owned();
    let fail = move |reason: String| -> ! {
        eprintln!("xoscar sub pool {index}: {reason}");
        std::process::exit(2)
    };
    let setting = |key: &str| {
        std::env::var(key).unwrap_or_else(|_| fail(format!("{key} is not set (or not UTF-8)")))
    };
    let address = |key: &str| -> Address {
        setting(key).parse().unwrap_or_else(|error| fail(format!("{key}: {error}")))
    };
    let (external, internal) = (address(ENV_ADDRESS), address(ENV_INTERNAL));
    let main_pid =
        setting(ENV_PARENT).parse().unwrap_or_else(|_| fail(format!("bad {ENV_PARENT}")));
    let main_internal = match setting(ENV_MAIN) {
        main if main.is_empty() => None,
        _ => Some(address(ENV_MAIN)),
    };
    watch_parent(main_pid);
    // On a thread of its own, with its own runtime: this may be called inside a runtime
    // (`#[tokio::main]`), whose thread then just waits here.
    let serving = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|error| fail(format!("no tokio runtime: {error}")));
        runtime.block_on(async move {
            let builder = configure(ActorPool::builder(external))
                // Its main pool dials it here; only that process may tell it routes.
                .internal_address_for(internal, Ingress::SubPoolInternal { main_pid })
                .neighbours(move |pool| {
                    Arc::new(Neighbourhood::new(pool, String::new(), false, main_internal))
                });
            let pool = builder.start().await.unwrap_or_else(|error| fail(error.to_string()));
            println!("{READY} {}", pool.address());
            std::future::pending::<()>().await;
            drop(pool);
        })
    });
    let _ = serving.join();
    std::process::exit(0)
}

/// Exits this process when the main pool's goes: its end of our stdin closes then (even when
/// it is killed), and a sub pool started after it died finds another parent.
fn watch_parent(parent: u32) {
    if std::os::unix::process::parent_id() != parent {
        eprintln!("xoscar sub pool: the main pool {parent} is gone");
        std::process::exit(3);
    }
    std::thread::spawn(|| {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 64];
        while matches!(stdin.read(&mut buf), Ok(n) if n > 0) {}
        std::process::exit(3);
    });
}
