//! A sub pool's process: serve the pool its main pool asked for, until the main pool goes.
//! [`run_if_sub_pool`] for a Rust executable; [`SubPoolSettings`] for a host that runs its
//! own runtime and event loop (the Python package's sub pools).

use std::io::Read;
use std::sync::Arc;

use xoscar_actor::extension::Ingress;
use xoscar_actor::{ActorError, ActorPool, ActorPoolBuilder};
use xoscar_transport::Address;

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
    let Some(settings) = SubPoolSettings::from_env() else { return };
    let settings = settings.unwrap_or_else(|reason| exit_failed(&reason));
    // On a thread of its own, with its own runtime: this may be called inside a runtime
    // (`#[tokio::main]`), whose thread then just waits here.
    let serving = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|error| exit_failed(&format!("no tokio runtime: {error}")));
        runtime.block_on(async move {
            let pool = settings
                .serve(configure)
                .await
                .unwrap_or_else(|error| exit_failed(&error.to_string()));
            std::future::pending::<()>().await;
            drop(pool);
        })
    });
    let _ = serving.join();
    std::process::exit(0)
}

fn exit_failed(reason: &str) -> ! {
    let index = std::env::var(ENV_SUB_POOL).unwrap_or_default();
    eprintln!("xoscar sub pool {index}: {reason}");
    std::process::exit(2)
}

/// What a sub pool's process was started with by its main pool (its environment): where to
/// serve, and whom to report to.
#[derive(Debug, Clone)]
pub struct SubPoolSettings {
    external: Address,
    internal: Address,
    main_pid: u32,
    main_internal: Option<Address>,
}

impl SubPoolSettings {
    /// The settings of this process if it is a sub pool ([`crate::ENV_SUB_POOL`] set):
    /// `None` otherwise; an error naming a variable that is missing or malformed.
    pub fn from_env() -> Option<Result<SubPoolSettings, String>> {
        std::env::var_os(ENV_SUB_POOL)?;
        Some(Self::read())
    }

    fn read() -> Result<SubPoolSettings, String> {
        let setting =
            |key: &str| std::env::var(key).map_err(|_| format!("{key} is not set (or not UTF-8)"));
        let address =
            |key: &str| setting(key)?.parse::<Address>().map_err(|error| format!("{key}: {error}"));
        let main_pid = setting(ENV_PARENT)?.parse().map_err(|_| format!("bad {ENV_PARENT}"))?;
        let main_internal = match setting(ENV_MAIN)? {
            main if main.is_empty() => None,
            _ => Some(address(ENV_MAIN)?),
        };
        Ok(SubPoolSettings {
            external: address(ENV_ADDRESS)?,
            internal: address(ENV_INTERNAL)?,
            main_pid,
            main_internal,
        })
    }

    /// Starts this sub pool's actor pool, built by `configure` (register the same actor
    /// types as the main pool), on the current tokio runtime; tells the main pool it serves
    /// (a line on stdout); and exits this process when the main pool goes (when its end of
    /// our stdin closes, even if it was killed). If the main pool is gone already, exits at
    /// once. Keep the pool returned for as long as the process should serve.
    pub async fn serve(
        self,
        configure: impl FnOnce(ActorPoolBuilder) -> ActorPoolBuilder,
    ) -> Result<ActorPool, ActorError> {
        let SubPoolSettings { external, internal, main_pid, main_internal } = self;
        watch_parent(main_pid);
        let pool = configure(ActorPool::builder(external))
            // Its main pool dials it here; only that process may tell it routes.
            .internal_address_for(internal, Ingress::SubPoolInternal { main_pid })
            .neighbours(move |pool| {
                Arc::new(Neighbourhood::new(pool, String::new(), false, main_internal))
            })
            .start()
            .await?;
        println!("{READY} {}", pool.address());
        Ok(pool)
    }
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
