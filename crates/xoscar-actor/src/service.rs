//! The serving side of an actor pool: a pool handler that dispatches by actor uid.
//!
//! Calls and tells (the hot path) are taken with a [`Responder`] on the connection's task and
//! handed to the actor's mailbox with it: the actor answers the caller directly, and the
//! server spends no task, no future and no channel per call. Everything else (create, has,
//! destroy) runs in a task of the pool.

use std::sync::Arc;

use prost::Message as _;
use xoscar_pool::{Message, Responder};
use xoscar_transport::Address;
use xoscar_wire::Payloads;

use crate::buffer;
use crate::core::Core;
use crate::delivery::{self, Delivery};
use crate::pb::{self, request::Kind};
use crate::{ActorError, Placement, forward, header};

/// Answers the requests of remote callers. Every failure becomes a failure response for that
/// request only: the connection and the pool go on.
pub(crate) struct Service(pub(crate) Arc<Core>);

impl xoscar_pool::Handler for Service {
    const RESPONDS: bool = true;

    async fn call(&self, request: Message) -> Message {
        Responder::respond_detached(self, request).await
    }

    fn respond(&self, request: Message, responder: Responder) {
        let Message { header: head, payloads } = request;
        let body = payloads;
        if let Some(delivery) = delivery::decode(&head) {
            return self.deliver(&head, delivery, false, body, responder);
        }
        let bad =
            |detail: String| ActorError::BadMessage { address: self.0.address.to_string(), detail };
        let kind = match pb::Request::decode(head.clone()) {
            Ok(pb::Request { kind: Some(kind) }) => kind,
            Ok(pb::Request { kind: None }) => {
                let error = bad("a request header with no kind".to_owned());
                return responder.respond(header::failure(&error));
            }
            Err(error) => {
                let error = bad(format!("request header: {error}"));
                return responder.respond(header::failure(&error));
            }
        };
        let (tell, batch, pb::Delivery { uid, message }) = match kind {
            Kind::Call(delivery) => (false, false, delivery),
            Kind::Tell(delivery) => (true, false, delivery),
            Kind::CallBatch(delivery) => (false, true, delivery),
            Kind::TellBatch(delivery) => (true, true, delivery),
            other => {
                let core = self.0.clone();
                return self.0.spawn_owned(async move {
                    let response = match manage(&core, other, body).await {
                        Ok(response) => response,
                        Err(error) => header::failure(&error),
                    };
                    responder.respond(response);
                });
            }
        };
        let delivery = Delivery { tell, uid: &uid, message: &message };
        self.deliver(&head, delivery, batch, body, responder);
    }
}

impl Service {
    /// Queues a call or tell for its actor. A call's responder travels with the message and
    /// the actor answers; a tell is answered once the mailbox took it.
    /// `batch`: the body holds a batch of the message. An actor this pool does not hold, but
    /// one of its sub pools does, gets the request forwarded there (`head` is its header).
    fn deliver(
        &self,
        head: &bytes::Bytes,
        delivery: Delivery<'_>,
        batch: bool,
        body: Payloads,
        responder: Responder,
    ) {
        let cell = match self.0.cell(delivery.uid) {
            Ok(cell) => cell,
            Err(_) if self.0.has_sub_pools() => {
                let request = Message::new(head.clone(), body);
                return forward::forward(&self.0, delivery.uid.into(), request, responder);
            }
            Err(error) => return responder.respond(header::failure(&error)),
        };
        if delivery.tell {
            match cell.deliver_remote((delivery.message, batch), body, &mut None) {
                Ok(None) => responder.respond(Message::default()),
                Ok(Some(wait)) => self.0.spawn_owned(async move {
                    responder.respond(match wait.await {
                        Ok(()) => Message::default(),
                        Err(error) => header::failure(&error),
                    });
                }),
                Err(error) => responder.respond(header::failure(&error)),
            }
            return;
        }
        let mut reply = Some(responder);
        match cell.deliver_remote((delivery.message, batch), body, &mut reply) {
            Ok(None) => {}
            // Should the actor stop before there is room, the message is dropped with its
            // responder, which then answers `Stopped`.
            Ok(Some(wait)) => self.0.spawn_owned(async move {
                let _ = wait.await;
            }),
            Err(error) => {
                // Still here when the message did not decode (or had no handler); otherwise it
                // went down with the message and answered already.
                if let Some(responder) = reply {
                    responder.respond(header::failure(&error));
                }
            }
        }
    }
}

/// Create, has, destroy and buffer writes.
async fn manage(core: &Arc<Core>, kind: Kind, body: Payloads) -> Result<Message, ActorError> {
    match kind {
        Kind::Create(create) => {
            let uid = (!create.uid.is_empty()).then(|| Arc::from(create.uid));
            let placement = Placement::from_wire(create.placement).map_err(|detail| {
                ActorError::BadMessage { address: core.address.to_string(), detail }
            })?;
            let (uid, at) = core.create_placed(&create.type_name, body, uid, &placement).await?;
            let address = if at == core.address { String::new() } else { at.to_string() };
            Ok(header::done(pb::Done { uid: uid.to_string(), present: true, address }))
        }
        Kind::Has(target) => {
            let elsewhere = match core.has(&target.uid) {
                true => None,
                false => forward::locate(core, &target.uid).await,
            };
            let present = elsewhere.is_some() || core.has(&target.uid);
            let address = elsewhere.map(|at| at.to_string()).unwrap_or_default();
            Ok(header::done(pb::Done { uid: target.uid, present, address }))
        }
        Kind::Destroy(target) => {
            if !core.has(&target.uid)
                && let Some(at) = forward::locate(core, &target.uid).await
            {
                forward::destroy_at(core, &at, &target.uid).await?;
            } else {
                core.destroy(&target.uid).await?;
            }
            Ok(header::done(pb::Done { uid: target.uid, present: false, address: String::new() }))
        }
        Kind::Routes(pb::Routes { routes }) => {
            let router = &crate::client::client()?.router;
            for route in routes {
                let bad = |e: xoscar_transport::AddressError| ActorError::BadMessage {
                    address: core.address.to_string(),
                    detail: format!("route: {e}"),
                };
                let external: Address = route.external.parse().map_err(bad)?;
                let internal: Address = route.internal.parse().map_err(bad)?;
                // Never re-route this pool's own address (it serves it).
                if external != core.address {
                    router.map(external, internal);
                }
            }
            Ok(header::done(pb::Done::default()))
        }
        Kind::WriteBuffer(write) => {
            buffer::write(core, write.buffer, write.offset, body).await?;
            Ok(header::done(pb::Done::default()))
        }
        Kind::Call(_) | Kind::Tell(_) | Kind::CallBatch(_) | Kind::TellBatch(_) => {
            Err(ActorError::BadMessage {
                address: core.address.to_string(),
                detail: "a call where a create, has or destroy was expected".to_owned(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;
    use xoscar_pool::Handler as _;

    use super::*;
    use crate::ActorPool;

    /// `call` (the future-style entry the server does not use for this handler) answers
    /// exactly what `respond` does.
    #[tokio::test]
    async fn call_answers_through_a_detached_responder() {
        let pool = ActorPool::start("inproc://service-call-test".parse().unwrap()).await.unwrap();
        let service = Service(pool.handle().core.clone());
        let has = pb::Request { kind: Some(Kind::Has(pb::Target { uid: "nobody".into() })) };
        let response = service.call(Message::new(has.encode_to_vec(), Vec::new())).await;
        let reply = pb::Reply::decode(response.header).unwrap();
        assert_eq!(
            reply.outcome,
            Some(pb::reply::Outcome::Done(pb::Done {
                uid: "nobody".into(),
                present: false,
                address: String::new()
            }))
        );
        let garbage = service.call(Message::new(&b"\xff\xff"[..], Vec::new())).await;
        let reply = pb::Reply::decode(garbage.header).unwrap();
        assert!(matches!(
            reply.outcome,
            Some(pb::reply::Outcome::Failure(pb::Failure { kind, .. })) if kind == pb::ErrorKind::BadMessage as i32
        ));
    }
}
