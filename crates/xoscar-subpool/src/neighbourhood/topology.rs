//! What a main pool knows of its host: its label, its sub pools, where the actors it placed in
//! them live, which pools idle-label creates hold, and how to create its actors again in a
//! restarted sub pool. Chooses the pool for a [`Placement`].

use std::collections::HashMap;
use std::sync::Arc;

use foldhash::fast::RandomState;
use xoscar_transport::Address;
use xoscar_wire::Payloads;

use xoscar_actor::extension::create_registered_at;
use xoscar_actor::{ActorError, Placement};

use crate::neighbourhood::Neighbourhood;
use crate::spec::SubPoolInfo;

/// How long a refused dial to a restarted sub pool is tried again while its actors are
/// created again.
const REDIAL_FOR: std::time::Duration = std::time::Duration::from_secs(2);

/// The most creating one actor again in a restarted sub pool may take.
const RECREATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What a main pool knows of its pools and where its actors live.
#[derive(Default)]
pub(crate) struct Topology {
    /// This pool's label.
    pub(crate) label: String,
    /// Its sub pools by index (`None`: removed, or gone for good).
    pub(crate) subs: Vec<Option<SubPoolInfo>>,
    /// Where actors created in (or found in) other pools live. One entry per such actor: it
    /// leaves when the actor is destroyed through this pool or a forwarded request finds it
    /// gone. An actor destroyed directly in its sub pool keeps its entry until then: a stale
    /// entry costs one wasted forward, which removes it.
    located: HashMap<Arc<str>, Address, RandomState>,
    /// Pools held by an idle-label create, and the uid holding each (`None` while creating).
    idle: HashMap<Address, Option<Arc<str>>, RandomState>,
    /// With [`crate::Recovery::Actors`]: how each actor placed in a sub pool was created, to
    /// create it again there after a restart.
    pub(crate) recipes: Option<HashMap<Arc<str>, Recipe, RandomState>>,
}

impl Topology {
    /// A pool labelled `label` with no sub pools yet; `recipes`: keeps how actors were placed in
    /// sub pools ([`crate::Recovery::Actors`]).
    pub(crate) fn new(label: String, recipes: bool) -> Self {
        Topology { label, recipes: recipes.then(Default::default), ..Topology::default() }
    }
}

/// How an actor placed in another pool was created.
#[derive(Clone)]
pub(crate) struct Recipe {
    type_name: String,
    init: Payloads,
    at: Address,
}

/// A pick that may be taken back: the idle pool it held, if any.
pub(crate) struct Pick {
    /// `None`: this pool.
    pub(crate) target: Option<Address>,
    idle: Option<Address>,
}

impl Neighbourhood {
    /// Chooses the pool for `placement`.
    pub(crate) fn pick(&self, placement: &Placement) -> Result<Pick, ActorError> {
        let mut topology = self.topology.lock();
        let here = |target: Address| if target == self.address { None } else { Some(target) };
        let none = |what: String| ActorError::Placement {
            address: self.address.to_string(),
            reason: what,
        };
        let labelled = |topology: &Topology, label: &str| -> Vec<Address> {
            let main = (topology.label == label).then(|| self.address.clone());
            let subs = topology.subs.iter().flatten().filter(|s| s.label == label);
            main.into_iter().chain(subs.map(|sub| sub.address.clone())).collect()
        };
        let (target, idle) = match placement {
            Placement::Here => (None, None),
            // Only this pool or one of its sub pools: a pool is not a relay that dials any
            // address a peer names (xoscar: an address not in the pool's configuration).
            Placement::Address(address) if *address == self.address => (None, None),
            Placement::Address(address) => {
                if !topology.subs.iter().flatten().any(|sub| sub.address == *address) {
                    return Err(none(format!(
                        "{address} is neither this pool nor one of its sub pools"
                    )));
                }
                (Some(address.clone()), None)
            }
            Placement::SubPool(index) => match topology.subs.get(*index) {
                Some(Some(sub)) => (Some(sub.address.clone()), None),
                Some(None) => return Err(none(format!("sub pool {index} was removed"))),
                None => {
                    return Err(none(format!(
                        "no sub pool {index} ({} sub pools)",
                        topology.subs.len()
                    )));
                }
            },
            Placement::RandomSubPool => {
                let subs: Vec<Address> =
                    topology.subs.iter().flatten().map(|sub| sub.address.clone()).collect();
                let Some(address) = random(&subs) else { return Err(none("no sub pools".into())) };
                (Some(address), None)
            }
            Placement::Label(label) => {
                let Some(address) = random(&labelled(&topology, label)) else {
                    return Err(none(format!("no pool labelled {label:?}")));
                };
                (here(address), None)
            }
            Placement::IdleLabel(label) => {
                let free =
                    labelled(&topology, label).into_iter().find(|a| !topology.idle.contains_key(a));
                let Some(address) = free else {
                    return Err(none(format!("no idle pool labelled {label:?}")));
                };
                topology.idle.insert(address.clone(), None);
                (here(address.clone()), Some(address))
            }
        };
        Ok(Pick { target, idle })
    }

    /// The create `pick` was for succeeded with `uid` at `at` (or failed: `None`).
    pub(crate) fn placed(
        &self,
        pick: &Pick,
        created: Option<(&Arc<str>, &Address)>,
        recipe: (&str, &Payloads),
    ) {
        let mut topology = self.topology.lock();
        if let (Some(recipes), Some((uid, at))) = (&mut topology.recipes, created)
            && *at != self.address
        {
            let (type_name, init) = (recipe.0.to_owned(), recipe.1.clone());
            recipes.insert(uid.clone(), Recipe { type_name, init, at: at.clone() });
        }
        if let Some(idle) = &pick.idle {
            match created {
                Some((uid, _)) => topology.idle.insert(idle.clone(), Some(uid.clone())),
                None => topology.idle.remove(idle),
            };
        }
        if let Some((uid, at)) = created
            && *at != self.address
        {
            topology.located.insert(uid.clone(), at.clone());
        }
    }

    /// Where `uid` lives among this pool's sub pools, as far as this pool knows.
    pub(crate) fn located(&self, uid: &str) -> Option<Address> {
        self.topology.lock().located.get(uid).cloned()
    }

    /// Notes that `uid` lives at `at` (found by asking the sub pools).
    pub(crate) fn locate_at(&self, uid: &str, at: Address) {
        self.topology.lock().located.insert(uid.into(), at);
    }

    /// `uid` left the sub pool at `at` (its notice): forgets it if that is where it lived.
    pub(crate) fn forget_at(&self, uid: &str, at: &Address) {
        let mut topology = self.topology.lock();
        if topology.located.get(uid) == Some(at) {
            topology.located.remove(uid);
        }
        if let Some(recipes) = &mut topology.recipes
            && recipes.get(uid).is_some_and(|recipe| recipe.at == *at)
        {
            recipes.remove(uid);
        }
        topology.idle.retain(|pool, holder| !(pool == at && holder.as_deref() == Some(uid)));
    }

    /// The sub pool at `at` died. Unless its actors are to be created again there, they are
    /// all gone: where they lived and the idle holds on it are forgotten.
    pub(crate) fn sub_pool_died(&self, at: &Address, recreating: bool) {
        if recreating {
            return;
        }
        let mut topology = self.topology.lock();
        topology.located.retain(|_, lived| lived != at);
        if let Some(recipes) = &mut topology.recipes {
            recipes.retain(|_, recipe| recipe.at != *at);
        }
        topology.idle.remove(at);
    }

    /// `uid` is gone (destroyed, or not found where it was noted): forgets where it lived and
    /// frees the idle pool it held.
    pub(crate) fn forget(&self, uid: &str) {
        let mut topology = self.topology.lock();
        topology.located.remove(uid);
        if let Some(recipes) = &mut topology.recipes {
            recipes.remove(uid);
        }
        topology.idle.retain(|_, holder| holder.as_deref() != Some(uid));
    }

    /// Sub pool `info.index` serves (started, added or restarted: its pid may be new).
    pub(crate) fn sub_pool_serves(&self, info: &SubPoolInfo) {
        let mut topology = self.topology.lock();
        if topology.subs.len() <= info.index {
            topology.subs.resize(info.index + 1, None);
        }
        topology.subs[info.index] = Some(info.clone());
    }

    /// Sub pool `index` is gone for good: placing on it fails.
    pub(crate) fn sub_pool_gone(&self, index: usize) {
        if let Some(entry) = self.topology.lock().subs.get_mut(index) {
            *entry = None;
        }
    }

    /// Whether this pool is a main pool with sub pools.
    pub(crate) fn has_sub_pools(&self) -> bool {
        self.topology.lock().subs.iter().any(Option::is_some)
    }

    /// The external address of the sub pool whose process is `pid`.
    pub(crate) fn sub_pool_of_pid(&self, pid: u32) -> Option<Address> {
        let topology = self.topology.lock();
        topology.subs.iter().flatten().find(|sub| sub.pid == pid).map(|sub| sub.address.clone())
    }

    /// The external addresses of this pool's sub pools.
    pub(crate) fn sub_addresses(&self) -> Vec<Address> {
        self.topology.lock().subs.iter().flatten().map(|sub| sub.address.clone()).collect()
    }

    /// Creates an actor of `type_name` where `placement` says: in this pool, or (through the
    /// caller) in another, noting where it lives. Returns its uid and its pool's address.
    pub(crate) async fn create_placed(
        &self,
        type_name: &str,
        init: Payloads,
        uid: Option<Arc<str>>,
        placement: &Placement,
    ) -> Result<(Arc<str>, Address), ActorError> {
        // Should this future be dropped before the create ends, the idle pool it held is free.
        let mut pick = PickGuard { neighbourhood: self, pick: Some(self.pick(placement)?) };
        let recipe = init.clone();
        let created = match &pick.pick().target {
            None => match self.pool() {
                Ok(pool) => pool
                    .create_registered(type_name, init, uid)
                    .await
                    .map(|uid| (uid, self.address.clone())),
                Err(error) => Err(error),
            },
            // (It may come back here for a pool of this process: that future is boxed.)
            Some(target) => {
                create_registered_at(target, type_name, init, uid, &Placement::Here).await
            }
        };
        let pick = pick.pick.take().expect("taken only here");
        self.placed(&pick, created.as_ref().ok().map(|(uid, at)| (uid, at)), (type_name, &recipe));
        created
    }

    /// Creates again, in the restarted pool at `at`, every actor this pool placed there.
    pub(crate) async fn recreate_at(&self, at: &Address) {
        let recipes: Vec<(Arc<str>, Recipe)> = match &self.topology.lock().recipes {
            Some(recipes) => recipes
                .iter()
                .filter(|(_, r)| r.at == *at)
                .map(|(u, r)| (u.clone(), r.clone()))
                .collect(),
            None => Vec::new(),
        };
        for (uid, recipe) in recipes {
            let created =
                tokio::time::timeout(RECREATE_TIMEOUT, create_again(at, &uid, &recipe)).await;
            let error = match created {
                Ok(Ok(_)) => continue,
                Ok(Err(error)) => error.to_string(),
                Err(_) => format!("no answer within {RECREATE_TIMEOUT:?}"),
            };
            tracing::warn!(%uid, %error, "an actor of a restarted sub pool could not be created again");
            self.forget_at(&uid, at);
        }
    }
}

/// Creates the actor `uid` again in the restarted pool at `at`. A dial refused right after
/// the restart (the chaos test saw one in a few runs: a connect that raced the new process's
/// listener) is tried again, 50 ms later and then twice as long each time, for at most
/// [`REDIAL_FOR`]: a pool that is really gone again must not hold up its next restart. Any
/// other failure is final.
async fn create_again(at: &Address, uid: &Arc<str>, recipe: &Recipe) -> Result<(), ActorError> {
    let mut pause = std::time::Duration::from_millis(50);
    let give_up = tokio::time::Instant::now() + REDIAL_FOR;
    loop {
        let init = recipe.init.clone();
        let created =
            create_registered_at(at, &recipe.type_name, init, Some(uid.clone()), &Placement::Here)
                .await;
        match created {
            Err(ActorError::Connection(error))
                if error.kind() == "connect" && tokio::time::Instant::now() + pause < give_up =>
            {
                tracing::debug!(%uid, %error, ?pause, "creating again: the dial failed; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            created => return created.map(drop),
        }
    }
}

/// A pick whose create is under way: dropped before it ends (the create future was dropped),
/// it frees the idle pool it held.
struct PickGuard<'a> {
    neighbourhood: &'a Neighbourhood,
    pick: Option<Pick>,
}

impl PickGuard<'_> {
    fn pick(&self) -> &Pick {
        self.pick.as_ref().expect("present until the create ends")
    }
}

impl Drop for PickGuard<'_> {
    fn drop(&mut self) {
        if let Some(pick) = &self.pick {
            self.neighbourhood.placed(pick, None, ("", &Payloads::new()));
        }
    }
}

/// One of `choices`, uniformly at random (rand's thread-local CSPRNG).
fn random(choices: &[Address]) -> Option<Address> {
    use rand::RngExt as _;
    if choices.is_empty() {
        return None;
    }
    Some(choices[rand::rng().random_range(0..choices.len())].clone())
}

#[cfg(test)]
mod tests {
    use super::random;
    use xoscar_transport::Address;

    /// Set in a child process of `random_picks_differ_from_process_to_process`.
    const PICKS_ENV: &str = "XOSCAR_TEST_RANDOM_PICKS";

    /// In the child: 20 picks between two pools, printed as a line of 0s and 1s.
    #[test]
    fn random_picks_entry() {
        if std::env::var_os(PICKS_ENV).is_none() {
            return;
        }
        let pools: [Address; 2] = ["inproc://a".parse().unwrap(), "inproc://b".parse().unwrap()];
        let picks: String =
            (0..20).map(|_| if random(&pools).unwrap() == pools[0] { '0' } else { '1' }).collect();
        println!("PICKS {picks}");
    }

    /// 200 processes each place 20 actors at random between two pools. Hashing a counter with
    /// a per-process seed put all 20 on one pool in about 2 % of processes; a real generator
    /// does so with odds of 2 in a million.
    #[test]
    fn random_picks_differ_from_process_to_process() {
        let mut one_sided = Vec::new();
        for _ in 0..200 {
            let out = std::process::Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "neighbourhood::topology::tests::random_picks_entry",
                    "--nocapture",
                ])
                .env(PICKS_ENV, "1")
                .output()
                .unwrap();
            let out = String::from_utf8_lossy(&out.stdout);
            let picks = out.split_once("PICKS ").map(|(_, p)| p[..20].to_owned()).unwrap();
            if picks.chars().all(|c| c == '0') || picks.chars().all(|c| c == '1') {
                one_sided.push(picks);
            }
        }
        assert!(one_sided.len() <= 1, "all 20 on one pool: {one_sided:?}");
    }
}
