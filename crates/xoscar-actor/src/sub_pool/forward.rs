//! A main pool's forwarding: requests for actors that live in its sub pools, sent to the main
//! pool's address, go on to the sub pool and come back with its answer.

use std::sync::Arc;

use tokio::time::Instant;
use xoscar_pool::{Message, Responder};
use xoscar_transport::Address;

use super::neighbourhood::Neighbourhood;
use crate::call::client::{Place, place};
use crate::pb::{self, request::Kind};
use crate::wire::header::{self, Answer};
use crate::{ActorError, STREAM_WINDOW};

impl Neighbourhood {
    /// Where `uid` lives among the sub pools of this main pool: where it was noted, or found
    /// by asking each sub pool (then noted).
    pub(crate) async fn locate_uid(&self, uid: &str) -> Option<Address> {
        // Never this pool itself: a forward to itself would come straight back (a loop that only
        // the hop count would end).
        if let Some(at) = self.located(uid).filter(|at| *at != self.address) {
            return Some(at);
        }
        for sub in self.sub_addresses().into_iter().filter(|sub| *sub != self.address) {
            let has = Kind::Has(pb::Target { uid: uid.to_owned() });
            if let Ok(Answer::Done(done)) =
                ask(&sub, Message::new(header::request(has), Vec::new())).await
                && done.present
            {
                self.locate_at(uid, sub.clone());
                return Some(sub);
            }
        }
        None
    }

    /// Destroys `uid` in the pool at `at` and forgets where it lived.
    pub(crate) async fn destroy_uid_at(&self, at: &Address, uid: &str) -> Result<(), ActorError> {
        let destroy = Kind::Destroy(pb::Target { uid: uid.to_owned() });
        let destroyed = ask(at, Message::new(header::request(destroy), Vec::new())).await.map(drop);
        self.forget(uid);
        destroyed
    }

    /// Forwards `request` (a call, tell or stream) for `uid`, which this pool does not hold,
    /// to the sub pool holding it, and answers `responder` with that pool's answer (a
    /// [`ActorError::NotFound`] if none holds it). Runs in a task of the pool; the caller's
    /// cancel or deadline ends the forwarded request too, so it reaches the sub pool.
    pub(crate) fn forward_to_holder(
        self: Arc<Self>,
        uid: Arc<str>,
        request: Message,
        mut responder: Responder,
    ) {
        let Ok(core) = self.core() else {
            return responder.respond(header::failure(&self.not_found(&uid)));
        };
        core.spawn_owned(async move {
            // One rule for calls and streams alike: the caller's cancel ends the forward
            // wherever it is, and dropping the forwarded call or stream cancels it in the
            // sub pool.
            let located = tokio::select! {
                biased;
                () = responder.cancelled() => return,
                at = self.locate_uid(&uid) => at,
            };
            let Some(at) = located else {
                return responder.respond(header::failure(&self.not_found(&uid)));
            };
            match responder.is_stream() {
                false => self.relay_answer(&uid, &at, request, responder).await,
                true => self.relay_stream(&uid, &at, request, responder).await,
            }
        });
    }

    /// Sends a call or tell on to the pool at `at` within the caller's deadline, and answers
    /// with that pool's answer.
    async fn relay_answer(
        &self,
        uid: &str,
        at: &Address,
        request: Message,
        mut responder: Responder,
    ) {
        let deadline = responder.deadline();
        let sent = tokio::select! {
            biased;
            () = responder.cancelled() => return,
            sent = send(at, request, deadline) => sent,
        };
        let response = sent.unwrap_or_else(|error| header::failure(&error));
        self.forget_if_not_found(uid, at, &response);
        responder.respond(response);
    }

    /// Opens the same stream on the pool at `at` and passes its items on as the caller's
    /// credit allows.
    async fn relay_stream(
        &self,
        uid: &str,
        at: &Address,
        request: Message,
        mut responder: Responder,
    ) {
        let opened = async {
            let (client, endpoint) = endpoint_of(at)?;
            Ok::<_, ActorError>(client.pool.call_stream(&endpoint, request, STREAM_WINDOW).await?)
        };
        let mut stream = tokio::select! {
            biased;
            () = responder.cancelled() => return,
            opened = opened => match opened {
                Ok(stream) => stream,
                Err(error) => return responder.respond(header::failure(&error)),
            },
        };
        loop {
            let next = tokio::select! {
                biased;
                // Both are cancel-safe: a stream's `next` loses no message when not chosen.
                () = responder.cancelled() => return,
                next = stream.next() => next,
            };
            match next {
                None => return responder.respond(Message::default()),
                Some(Err(error)) => return responder.respond(header::failure(&error.into())),
                Some(Ok(last)) if stream.is_finished() => {
                    self.forget_if_not_found(uid, at, &last);
                    return responder.respond(last);
                }
                Some(Ok(item)) => {
                    if responder.send_item(item).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// `response` from the pool at `at` says `uid` is not there: it was destroyed there
    /// meanwhile, so look again next time.
    fn forget_if_not_found(&self, uid: &str, at: &Address, response: &Message) {
        if is_not_found(response, at) {
            self.forget(uid);
        }
    }
}

/// The endpoint for the pool at `at`: its internal address when one is mapped; a pool of
/// this process is reached through its listener like any other.
fn endpoint_of(
    at: &Address,
) -> Result<(&'static crate::call::client::Client, Address), ActorError> {
    Ok(match place(at)? {
        (client, Place::Remote(endpoint)) => (client, endpoint.into_owned()),
        (client, Place::Local(_)) => (client, at.clone()),
    })
}

/// Sends `request` to the pool at `at` (over its internal address when one is mapped) within
/// the caller's deadline.
async fn send(
    at: &Address,
    request: Message,
    deadline: Option<Instant>,
) -> Result<Message, ActorError> {
    let (client, endpoint) = endpoint_of(at)?;
    let timeout = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
    Ok(client.pool.call_with_timeout(&endpoint, request, timeout).await?)
}

pub(crate) async fn ask(at: &Address, request: Message) -> Result<Answer, ActorError> {
    let response = send(at, request, None).await?;
    header::answer(response, at)
}

/// How long a sub pool tries to tell its main pool that an actor left.
const GONE_NOTICE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A sub pool's notice to its main pool (at its internal socket `main`) that `uid` left;
/// completes when it was told, or gave up.
pub(crate) async fn gone_notice(main: Address, uid: Arc<str>) {
    let gone = Kind::Gone(pb::Target { uid: uid.to_string() });
    let notice = ask(&main, Message::new(header::request(gone), Vec::new()));
    match tokio::time::timeout(GONE_NOTICE_TIMEOUT, notice).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => tracing::debug!(%error, "could not tell the main pool"),
        Err(_) => tracing::debug!("telling the main pool that an actor left timed out"),
    }
}

fn is_not_found(response: &Message, at: &Address) -> bool {
    !response.header.is_empty()
        && matches!(header::answer(response.clone(), at), Err(ActorError::NotFound { .. }))
}
