//! A main pool's forwarding: requests for actors that live in its sub pools, sent to the main
//! pool's address, go on to the sub pool and come back with its answer.

use std::sync::Arc;

use tokio::time::Instant;
use xoscar_pool::{Message, Responder};
use xoscar_transport::Address;

use xoscar_actor::extension::{
    destroy_at, endpoint_for, failure_response, has_at, is_not_found, tell_gone,
};
use xoscar_actor::{ActorError, STREAM_WINDOW, caller};

use crate::neighbourhood::Neighbourhood;

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
            if let Ok(true) = has_at(&sub, uid).await {
                self.locate_at(uid, sub.clone());
                return Some(sub);
            }
        }
        None
    }

    /// Destroys `uid` in the pool at `at` and forgets where it lived.
    pub(crate) async fn destroy_uid_at(&self, at: &Address, uid: &str) -> Result<(), ActorError> {
        let destroyed = destroy_at(at, uid).await;
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
        let Ok(pool) = self.pool() else {
            return responder.respond(failure_response(&self.not_found(&uid)));
        };
        pool.spawn_owned(async move {
            // One rule for calls and streams alike: the caller's cancel ends the forward
            // wherever it is, and dropping the forwarded call or stream cancels it in the
            // sub pool.
            let located = tokio::select! {
                biased;
                () = responder.cancelled() => return,
                at = self.locate_uid(&uid) => at,
            };
            let Some(at) = located else {
                return responder.respond(failure_response(&self.not_found(&uid)));
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
        let response = sent.unwrap_or_else(|error| failure_response(&error));
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
            let endpoint = endpoint_for(at)?;
            Ok::<_, ActorError>(caller()?.call_stream(&endpoint, request, STREAM_WINDOW).await?)
        };
        let mut stream = tokio::select! {
            biased;
            () = responder.cancelled() => return,
            opened = opened => match opened {
                Ok(stream) => stream,
                Err(error) => return responder.respond(failure_response(&error)),
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
                Some(Err(error)) => return responder.respond(failure_response(&error.into())),
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

/// Sends `request` to the pool at `at` (over its internal address when one is mapped) within
/// the caller's deadline.
async fn send(
    at: &Address,
    request: Message,
    deadline: Option<Instant>,
) -> Result<Message, ActorError> {
    let timeout = deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()));
    Ok(caller()?.call_with_timeout(&endpoint_for(at)?, request, timeout).await?)
}

/// How long a sub pool tries to tell its main pool that an actor left.
const GONE_NOTICE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A sub pool's notice to its main pool (at its internal socket `main`) that `uid` left;
/// completes when it was told, or gave up.
pub(crate) async fn gone_notice(main: Address, uid: Arc<str>) {
    match tokio::time::timeout(GONE_NOTICE_TIMEOUT, tell_gone(&main, &uid)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::debug!(%error, "could not tell the main pool"),
        Err(_) => tracing::debug!("telling the main pool that an actor left timed out"),
    }
}
