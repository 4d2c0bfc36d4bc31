//! A main pool's sub pools at run time: the monitor that notices a dead one and recovers it,
//! killing, adding and removing them, and waiting until all serve.

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::spawn::{SubPoolProcess, socket_in, start_one};
use crate::spec::{SubPool, SubPoolInfo};
use xoscar_transport::Address;

use xoscar_actor::extension::send_routes;
use xoscar_actor::{ActorError, unmap_address};

use crate::neighbourhood::Neighbourhood;

/// How often the monitor looks at its sub pools: a death is noticed within this.
const WATCH_EVERY: Duration = Duration::from_millis(100);
/// The back-off after the first quick death; it doubles with each further one in a row.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// The longest back-off.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The most telling one sub pool the routes of its host may take.
const ANNOUNCE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a main pool does when a sub pool's process dies ([`crate::MainPoolBuilder::recovery`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Recovery {
    /// Nothing: the sub pool stays gone, and placing on it fails.
    Off,
    /// Restart it at the same index and addresses; its actors are gone.
    #[default]
    Process,
    /// Restart it, then create again the actors the main pool placed there: same uids, same
    /// init messages; whatever state they had is lost.
    Actors,
}

/// Called with a sub pool and how its process ended, before it is recovered.
pub type ExitHook = Arc<dyn Fn(&SubPoolInfo, ExitStatus) + Send + Sync>;

enum Slot {
    /// Boxed: a process is large beside the other states.
    Running(Box<SubPoolProcess>),
    /// Died; being started again.
    Restarting(SubPoolInfo),
    /// Died and not recovered, or removed.
    Gone,
}

/// A main pool's sub pools, shared with its monitor task.
pub(crate) struct SubPools {
    slots: Mutex<Vec<Slot>>,
    /// The main pool's external address and its internal Unix socket, once it has a host.
    main_route: std::sync::OnceLock<(Address, Address)>,
    recovery: Recovery,
    hook: Option<ExitHook>,
    /// A sub pool came back, or gave up.
    changed: Notify,
    /// A sub pool is gone for good: the others are to be told routes without it.
    routes_stale: AtomicBool,
    /// Held while the routes are told, so that sets arrive in the order they were read.
    announcing: tokio::sync::Mutex<()>,
}

impl SubPools {
    pub(crate) fn new(recovery: Recovery, hook: Option<ExitHook>) -> Self {
        let (slots, main_route) = (Mutex::default(), std::sync::OnceLock::new());
        let (changed, routes_stale) = (Notify::new(), AtomicBool::new(false));
        let announcing = tokio::sync::Mutex::new(());
        SubPools { slots, main_route, recovery, hook, changed, routes_stale, announcing }
    }

    /// Where the main pool is reached on this host: told to every sub pool.
    pub(crate) fn set_main_route(&self, external: Address, internal: Address) {
        let _ = self.main_route.set((external, internal));
    }

    /// The main pool's internal socket, once it has one.
    pub(crate) fn main_internal(&self) -> Option<&Address> {
        self.main_route.get().map(|(_, internal)| internal)
    }

    /// Takes the sub pools started with the main pool, at indices 0, 1, ...
    pub(crate) fn extend(&self, running: Vec<SubPoolProcess>) {
        self.slots
            .lock()
            .extend(running.into_iter().map(|process| Slot::Running(Box::new(process))));
    }

    /// Tells every running sub pool the internal Unix sockets of the main pool and of the
    /// other sub pools, so that calls between pools of this host skip TCP. A sub pool that
    /// cannot be told is logged; its calls still go over the external addresses.
    pub(crate) async fn announce(&self) {
        // One at a time, each reading the set when it starts: each set replaces the last in
        // the sub pools, so the newest must arrive last.
        let _turn = self.announcing.lock().await;
        let infos = self.infos();
        let subs = infos.iter().map(|sub| (sub.address.clone(), sub.internal.clone()));
        let routes: Vec<(Address, Address)> =
            self.main_route.get().cloned().into_iter().chain(subs).collect();
        for sub in &infos {
            let told = tokio::time::timeout(ANNOUNCE_TIMEOUT, send_routes(&sub.address, &routes));
            let error = match told.await {
                Ok(Ok(_)) => continue,
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {ANNOUNCE_TIMEOUT:?}"),
            };
            tracing::warn!(index = sub.index, %error, "a sub pool could not be told the routes of its host");
        }
    }

    /// The sub pools that serve or are being restarted.
    pub(crate) fn infos(&self) -> Vec<SubPoolInfo> {
        let slots = self.slots.lock();
        slots
            .iter()
            .filter_map(|slot| match slot {
                Slot::Running(process) => Some(process.info.clone()),
                Slot::Restarting(info) => Some(info.clone()),
                Slot::Gone => None,
            })
            .collect()
    }

    /// SIGKILLs sub pool `index`; the monitor then recovers it as configured.
    pub(crate) fn kill(&self, index: usize) -> Result<(), ActorError> {
        match self.slots.lock().get_mut(index) {
            Some(Slot::Running(process)) => {
                process.kill();
                Ok(())
            }
            _ => Err(no_sub_pool(index)),
        }
    }

    /// Starts one more sub pool, at the next index.
    /// The index is taken before the process starts, so parallel adds get distinct ones; a
    /// start that fails leaves its index gone.
    pub(crate) async fn add(&self, spec: SubPool, dir: &Path) -> Result<SubPoolInfo, ActorError> {
        let index = {
            let mut slots = self.slots.lock();
            slots.push(Slot::Gone);
            slots.len() - 1
        };
        let process = start_one(index, spec, socket_in(dir, index), self.main_internal()).await?;
        let info = process.info.clone();
        if let Some(slot) = self.slots.lock().get_mut(index) {
            *slot = Slot::Running(Box::new(process));
        }
        Ok(info)
    }

    /// Stops sub pool `index` for good (SIGKILL); its index stays taken.
    pub(crate) fn remove(&self, index: usize) -> Result<SubPoolInfo, ActorError> {
        let mut slots = self.slots.lock();
        let slot = slots.get_mut(index).ok_or_else(|| no_sub_pool(index))?;
        let info = match slot {
            Slot::Running(process) => process.info.clone(),
            Slot::Restarting(info) => info.clone(),
            Slot::Gone => return Err(no_sub_pool(index)),
        };
        // Dropping the process kills and reaps it.
        *slot = Slot::Gone;
        self.routes_stale.store(true, Ordering::Release);
        Ok(info)
    }

    /// Kills every sub pool now (the main pool goes; its monitor task may outlive this call
    /// briefly, holding this set).
    pub(crate) fn kill_all(&self) {
        let slots = std::mem::take(&mut *self.slots.lock());
        // Dropping a running process kills and reaps it.
        drop(slots);
    }

    /// Completes once no sub pool is dead or being restarted (gone ones aside).
    pub(crate) async fn recovered(&self) {
        loop {
            let changed = self.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            let settled = self.slots.lock().iter_mut().all(|slot| match slot {
                // Killed and not yet seen dead still counts as dying.
                Slot::Running(process) => process.exited().is_none() && !process.is_killed(),
                Slot::Restarting(_) => false,
                Slot::Gone => true,
            });
            if settled {
                return;
            }
            // A death is noticed by polling; a restart's end by the notification.
            let _ = tokio::time::timeout(WATCH_EVERY, changed).await;
        }
    }

    /// Whether sub pool `index` is being restarted (not removed meanwhile).
    fn is_restarting(&self, index: usize) -> bool {
        matches!(self.slots.lock().get(index), Some(Slot::Restarting(_)))
    }

    /// Puts the outcome of a restart in sub pool `index`'s slot, unless it was removed
    /// meanwhile (then `outcome` is dropped: a process is killed). Whether it was put.
    fn settle(&self, index: usize, outcome: Slot) -> bool {
        let mut slots = self.slots.lock();
        match slots.get_mut(index) {
            Some(slot @ Slot::Restarting(_)) => {
                *slot = outcome;
                true
            }
            _ => false,
        }
    }

    /// Takes the sub pools whose process has exited, marking them restarting (or gone).
    fn take_dead(&self) -> Vec<(SubPoolProcess, ExitStatus)> {
        let mut slots = self.slots.lock();
        let mut dead = Vec::new();
        for slot in slots.iter_mut() {
            let Slot::Running(process) = slot else { continue };
            let Some(status) = process.exited() else { continue };
            let info = process.info.clone();
            let next = match self.recovery {
                Recovery::Off => Slot::Gone,
                Recovery::Process | Recovery::Actors => Slot::Restarting(info),
            };
            let Slot::Running(process) = std::mem::replace(slot, next) else { unreachable!() };
            dead.push((*process, status));
        }
        dead
    }
}

fn no_sub_pool(index: usize) -> ActorError {
    ActorError::Placement { address: String::new(), reason: format!("no running sub pool {index}") }
}

/// Watches `pools` until the main pool (whose `neighbourhood` it keeps up to date) goes:
/// each death is reported to the hook and logged, then recovered as configured, each sub pool in a task of its own (owned by
/// this one, so aborting the monitor aborts them), so one that is slow to come back holds up
/// no other. Owned by the main pool, which aborts it.
pub(crate) async fn monitor(pools: Arc<SubPools>, neighbourhood: Weak<Neighbourhood>) {
    let mut recovering = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = tokio::time::sleep(WATCH_EVERY) => {}
            // Cancel-safe: a finished recovery is only reaped here.
            Some(_) = recovering.join_next(), if !recovering.is_empty() => continue,
        }
        if pools.routes_stale.swap(false, Ordering::AcqRel) {
            // In a task: telling the routes must not hold up noticing deaths.
            let pools = pools.clone();
            recovering.spawn(async move { pools.announce().await });
        }
        for (process, status) in pools.take_dead() {
            recovering.spawn(recover(pools.clone(), neighbourhood.clone(), process, status));
        }
    }
}

/// Reports a dead sub pool, then restarts it (after a back-off if it died right after it
/// started), creates its actors again if asked, and tells every sub pool the routes; or,
/// when it cannot be restarted, forgets it.
async fn recover(
    pools: Arc<SubPools>,
    neighbourhood: Weak<Neighbourhood>,
    process: SubPoolProcess,
    status: ExitStatus,
) {
    let info = process.info.clone();
    tracing::warn!(index = info.index, label = %info.label, pid = info.pid, %status, "a sub pool died");
    if let Some(hook) = &pools.hook
        && std::panic::catch_unwind(AssertUnwindSafe(|| hook(&info, status))).is_err()
    {
        tracing::warn!(index = info.index, "the sub pool exit hook panicked");
    }
    let recreating = pools.recovery == Recovery::Actors;
    if let Some(neighbourhood) = neighbourhood.upgrade() {
        neighbourhood.sub_pool_died(&info.address, recreating);
    }
    if pools.recovery == Recovery::Off {
        gone_for_good(&pools, &neighbourhood, &info);
        pools.changed.notify_waiters();
        return;
    }
    let quick_deaths = match process.died_quickly() {
        true => process.quick_deaths + 1,
        false => 0,
    };
    if let Some(backoff) = backoff(quick_deaths) {
        tracing::info!(
            index = info.index,
            ?backoff,
            "a sub pool died right after it started; waiting before restarting it"
        );
        tokio::time::sleep(backoff).await;
    }
    let (spec, internal) = (process.spec.clone(), process.info.internal.clone());
    drop(process);
    let mut process = match start_one(info.index, spec, internal, pools.main_internal()).await {
        Ok(process) => process,
        Err(error) => {
            tracing::warn!(index = info.index, %error, "a sub pool could not be restarted");
            if let Some(neighbourhood) = neighbourhood.upgrade() {
                neighbourhood.sub_pool_died(&info.address, false);
            }
            gone_for_good(&pools, &neighbourhood, &info);
            pools.settle(info.index, Slot::Gone);
            pools.changed.notify_waiters();
            return;
        }
    };
    process.quick_deaths = quick_deaths;
    let restarted = process.info.clone();
    if let Some(neighbourhood) = neighbourhood.upgrade()
        && pools.is_restarting(info.index)
    {
        neighbourhood.sub_pool_serves(&restarted);
        if recreating {
            neighbourhood.recreate_at(&restarted.address).await;
        }
    }
    if !pools.settle(info.index, Slot::Running(Box::new(process))) {
        // Removed meanwhile: the new process went with its slot; so does what was noted of it.
        if let Some(neighbourhood) = neighbourhood.upgrade() {
            neighbourhood.sub_pool_gone(info.index);
            neighbourhood.sub_pool_died(&restarted.address, false);
        }
        pools.changed.notify_waiters();
        return;
    }
    tracing::info!(index = info.index, pid = restarted.pid, "a sub pool was restarted");
    metrics::counter!(crate::metrics::SUB_POOL_RESTARTS).increment(1);
    // The new process knows no routes yet.
    pools.announce().await;
    pools.changed.notify_waiters();
}

/// How long to wait before restarting a sub pool that died right after it started this many
/// times in a row: [`FIRST_BACKOFF`], doubling each time, at most [`MAX_BACKOFF`]; none for
/// one that had been running a while.
pub(crate) fn backoff(quick_deaths: u32) -> Option<Duration> {
    let doublings = quick_deaths.checked_sub(1)?.min(16);
    Some(FIRST_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF))
}

/// Sub pool `info` will not come back: placing on it fails, this process no longer maps its
/// address to its socket, and the other sub pools are told routes without it.
fn gone_for_good(pools: &SubPools, neighbourhood: &Weak<Neighbourhood>, info: &SubPoolInfo) {
    if let Some(neighbourhood) = neighbourhood.upgrade() {
        neighbourhood.sub_pool_gone(info.index);
    }
    let _ = unmap_address(&info.address);
    pools.routes_stale.store(true, Ordering::Release);
}
