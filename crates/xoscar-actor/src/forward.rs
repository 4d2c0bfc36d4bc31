//! A main pool's forwarding: requests for actors that live in its sub pools, sent to the main
//! pool's address, go on to the sub pool and come back with its answer.

use std::sync::Arc;

use tokio::time::Instant;
use xoscar_pool::{Message, Responder};
use xoscar_transport::Address;

use crate::ActorError;
use crate::client::{Place, place};
use crate::core::Core;
use crate::header::{self, Answer};
use crate::pb::{self, request::Kind};

/// Where `uid` lives among the sub pools of the main pool `core`: where it was noted, or found
/// by asking each sub pool (then noted).
pub(crate) async fn locate(core: &Arc<Core>, uid: &str) -> Option<Address> {
    if let Some(at) = core.located(uid) {
        return Some(at);
    }
    for sub in core.sub_addresses() {
        let has = Kind::Has(pb::Target { uid: uid.to_owned() });
        if let Ok(Answer::Done(done)) =
            ask(&sub, Message::new(header::request(has), Vec::new())).await
            && done.present
        {
            core.locate_at(uid, sub.clone());
            return Some(sub);
        }
    }
    None
}

/// Destroys `uid` in the pool at `at` and forgets where it lived.
pub(crate) async fn destroy_at(
    core: &Arc<Core>,
    at: &Address,
    uid: &str,
) -> Result<(), ActorError> {
    let destroy = Kind::Destroy(pb::Target { uid: uid.to_owned() });
    let destroyed = ask(at, Message::new(header::request(destroy), Vec::new())).await.map(drop);
    core.forget(uid);
    destroyed
}

/// Forwards `request` for `uid`, which this pool does not hold, to the sub pool holding it,
/// and answers `responder` with that pool's answer (a [`ActorError::NotFound`] if none holds
/// it). Runs in a task of the pool; the caller's cancel or deadline ends the forwarded call
/// too, so it reaches the sub pool.
pub(crate) fn forward(core: &Arc<Core>, uid: Arc<str>, request: Message, mut responder: Responder) {
    let task_core = core.clone();
    core.spawn_owned(async move {
        let core = task_core;
        let deadline = responder.deadline();
        let forwarded = async {
            let Some(at) = locate(&core, &uid).await else {
                return header::failure(&core.not_found(&uid));
            };
            match send(&at, request, deadline).await {
                Ok(response) => {
                    if is_not_found(&response, &at) {
                        // It was destroyed there meanwhile: look again next time.
                        core.forget(&uid);
                    }
                    response
                }
                Err(error) => header::failure(&error),
            }
        };
        tokio::select! {
            biased;
            // The caller gave up: dropping the forwarded call cancels it in the sub pool.
            () = responder.cancelled() => {}
            response = forwarded => responder.respond(response),
        }
    });
}

/// Sends `request` to the pool at `at` (over its internal address when one is mapped) within
/// the caller's deadline.
async fn send(
    at: &Address,
    request: Message,
    deadline: Option<Instant>,
) -> Result<Message, ActorError> {
    let (client, endpoint) = match place(at)? {
        (client, Place::Remote(endpoint)) => (client, endpoint.into_owned()),
        // A pool of this process: reached through its listener like any other.
        (client, Place::Local(_)) => (client, at.clone()),
    };
    let timeout = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
    Ok(client.pool.call_with_timeout(&endpoint, request, timeout).await?)
}

pub(crate) async fn ask(at: &Address, request: Message) -> Result<Answer, ActorError> {
    let response = send(at, request, None).await?;
    header::answer(response, at)
}

fn is_not_found(response: &Message, at: &Address) -> bool {
    !response.header.is_empty()
        && matches!(header::answer(response.clone(), at), Err(ActorError::NotFound { .. }))
}
