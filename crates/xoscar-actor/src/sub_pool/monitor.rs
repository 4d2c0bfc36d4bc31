//! A main pool's sub pools at run time: the monitor that notices a dead one and recovers it,
//! killing, adding and removing them, and waiting until all serve.

use std::panic::AssertUnwindSafe;
use std::process::ExitStatus;
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;

use super::spawn::{SubPoolProcess, start_one};
use super::{SubPool, SubPoolInfo};
use xoscar_pool::Message;
use xoscar_transport::Address;

use crate::core::Core;
use crate::pb::{self, request::Kind};
use crate::{ActorError, forward, header};

/// How often the monitor looks at its sub pools: a death is noticed within this.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// What a main pool does when a sub pool's process dies ([`crate::ActorPoolBuilder::recovery`]).
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
    Running(SubPoolProcess),
    /// Died; being started again.
    Restarting(SubPoolInfo),
    /// Died and not recovered, or removed.
    Gone,
}

/// A main pool's sub pools, shared with its monitor task.
pub(crate) struct SubPools {
    slots: Mutex<Vec<Slot>>,
    /// The main pool's external address and its internal Unix socket.
    main_route: Option<(Address, Address)>,
    recovery: Recovery,
    hook: Option<ExitHook>,
    /// A sub pool came back, or gave up.
    changed: Notify,
}

impl SubPools {
    pub(crate) fn new(
        running: Vec<SubPoolProcess>,
        main_route: Option<(Address, Address)>,
        recovery: Recovery,
        hook: Option<ExitHook>,
    ) -> Self {
        let slots = Mutex::new(running.into_iter().map(Slot::Running).collect());
        SubPools { slots, main_route, recovery, hook, changed: Notify::new() }
    }

    /// Tells every running sub pool the internal Unix sockets of the main pool and of the
    /// other sub pools, so that calls between pools of this host skip TCP. A sub pool that
    /// cannot be told is logged; its calls still go over the external addresses.
    pub(crate) async fn announce(&self) {
        let infos = self.infos();
        let subs = infos.iter().map(|sub| (sub.address.clone(), sub.internal.clone()));
        let routes: Vec<pb::Route> = self
            .main_route
            .clone()
            .into_iter()
            .chain(subs)
            .map(|(external, internal)| pb::Route {
                external: external.to_string(),
                internal: internal.to_string(),
            })
            .collect();
        for sub in &infos {
            let kind = Kind::Routes(pb::Routes { routes: routes.clone() });
            let request = Message::new(header::request(kind), Vec::new());
            if let Err(error) = forward::ask(&sub.address, request).await {
                tracing::warn!(index = sub.index, %error, "a sub pool could not be told the routes of its host");
            }
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
    pub(crate) async fn add(&self, spec: SubPool) -> Result<SubPoolInfo, ActorError> {
        let index = {
            let mut slots = self.slots.lock();
            slots.push(Slot::Gone);
            slots.len() - 1
        };
        let process = start_one(index, spec, None).await?;
        let info = process.info.clone();
        if let Some(slot) = self.slots.lock().get_mut(index) {
            *slot = Slot::Running(process);
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
                Slot::Running(process) => process.exited().is_none(),
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
            dead.push((process, status));
        }
        dead
    }
}

fn no_sub_pool(index: usize) -> ActorError {
    ActorError::Placement { address: String::new(), reason: format!("no running sub pool {index}") }
}

/// Watches `pools` until the main pool (its `core`) goes: each death is reported to the hook
/// and logged, then recovered as configured. Owned by the main pool, which aborts it.
pub(crate) async fn monitor(pools: Arc<SubPools>, core: Weak<Core>) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        for (process, status) in pools.take_dead() {
            let info = process.info.clone();
            tracing::warn!(index = info.index, label = %info.label, pid = info.pid, %status, "a sub pool died");
            if let Some(hook) = &pools.hook
                && std::panic::catch_unwind(AssertUnwindSafe(|| hook(&info, status))).is_err()
            {
                tracing::warn!(index = info.index, "the sub pool exit hook panicked");
            }
            if pools.recovery == Recovery::Off {
                if let Some(core) = core.upgrade() {
                    core.sub_pool_gone(info.index);
                }
                pools.changed.notify_waiters();
                continue;
            }
            let (spec, internal) = (process.spec.clone(), process.info.internal.clone());
            drop(process);
            let restarted = start_one(info.index, spec, Some(internal)).await;
            let slot = match restarted {
                Ok(process) => {
                    if pools.recovery == Recovery::Actors
                        && let Some(core) = core.upgrade()
                    {
                        core.recreate_at(&process.info.address).await;
                    }
                    tracing::info!(
                        index = info.index,
                        pid = process.info.pid,
                        "a sub pool was restarted"
                    );
                    crate::metrics::sub_pool_restarted();
                    Slot::Running(process)
                }
                Err(error) => {
                    tracing::warn!(index = info.index, %error, "a sub pool could not be restarted");
                    if let Some(core) = core.upgrade() {
                        core.sub_pool_gone(info.index);
                    }
                    Slot::Gone
                }
            };
            let restarted = matches!(slot, Slot::Running(_));
            if let Some(place) = pools.slots.lock().get_mut(info.index) {
                // Unless it was removed meanwhile.
                if matches!(place, Slot::Restarting(_)) {
                    *place = slot;
                }
            }
            if restarted {
                // The new process knows no routes yet.
                pools.announce().await;
            }
            pools.changed.notify_waiters();
        }
    }
}
