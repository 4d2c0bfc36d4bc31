//! ractor and kameo doing what the local actor benches do (an actor adding numbers, asked and
//! told), so the report shows them beside ours. Behind the `peers` feature.

use std::sync::Arc;

use kameo::actor::Spawn as _;

/// One ractor actor and one kameo actor, each keeping a total.
#[derive(Clone)]
pub struct Peers {
    ractor: ractor::ActorRef<RactorMsg>,
    kameo: kameo::actor::ActorRef<KameoCounter>,
    _ractor_task: Arc<tokio::task::JoinHandle<()>>,
}

impl Peers {
    /// Spawns both on the current runtime.
    pub async fn spawn() -> Peers {
        let (ractor, task) =
            ractor::Actor::spawn(None, RactorCounter, ()).await.expect("spawn the ractor actor");
        let kameo = KameoCounter::spawn(KameoCounter { total: 0 });
        Peers { ractor, kameo, _ractor_task: Arc::new(task) }
    }

    /// ractor's ask (`call`) of one number.
    pub async fn ractor_ask(&self) {
        let reply = self.ractor.call(|port| RactorMsg::Ask(1, port), None).await;
        assert!(matches!(reply, Ok(ractor::rpc::CallResult::Success(_))));
    }

    /// ractor's tell (`cast`): its mailbox is unbounded, so this never waits.
    pub async fn ractor_tell(&self) {
        self.ractor.cast(RactorMsg::Tell(1)).expect("ractor actor alive");
    }

    /// kameo's ask.
    pub async fn kameo_ask(&self) {
        self.kameo.ask(KameoAdd(1)).await.expect("kameo actor answered");
    }

    /// kameo's tell.
    pub async fn kameo_tell(&self) {
        self.kameo.tell(KameoAdd(1)).await.expect("kameo actor alive");
    }
}

/// ractor's message: an ask carries its reply port.
pub enum RactorMsg {
    /// Add and reply with the total.
    Ask(u64, ractor::RpcReplyPort<u64>),
    /// Add.
    Tell(u64),
}

struct RactorCounter;

impl ractor::Actor for RactorCounter {
    type Msg = RactorMsg;
    type State = u64;
    type Arguments = ();

    async fn pre_start(
        &self,
        _: ractor::ActorRef<RactorMsg>,
        _: (),
    ) -> Result<u64, ractor::ActorProcessingErr> {
        Ok(0)
    }

    async fn handle(
        &self,
        _: ractor::ActorRef<RactorMsg>,
        message: RactorMsg,
        total: &mut u64,
    ) -> Result<(), ractor::ActorProcessingErr> {
        match message {
            RactorMsg::Ask(n, reply) => {
                *total += n;
                let _ = reply.send(*total);
            }
            RactorMsg::Tell(n) => *total += n,
        }
        Ok(())
    }
}

/// kameo's counter.
#[derive(kameo::Actor)]
pub struct KameoCounter {
    total: u64,
}

/// Add a number; the reply is the total.
pub struct KameoAdd(u64);

impl kameo::message::Message<KameoAdd> for KameoCounter {
    type Reply = u64;

    async fn handle(&mut self, add: KameoAdd, _: &mut kameo::message::Context<Self, u64>) -> u64 {
        self.total += add.0;
        self.total
    }
}
