//! The serving side of an actor pool: a pool handler that dispatches by actor uid.
//!
//! Calls and tells (the hot path) are taken with a [`Responder`] on the connection's task and
//! handed to the actor's mailbox with it: the actor answers the caller directly, and the
//! server spends no task, no future and no channel per call. Everything else (create, has,
//! destroy) runs in a task of the pool.
//!
//! Uses the actor, transfer (buffer writes) and wire modules, and the pool's neighbours for
//! what it does not hold.

use std::sync::Arc;

use prost::Message as _;
use xoscar_pool::{Message, Responder};
use xoscar_transport::Address;
use xoscar_wire::Payloads;

use crate::actor::core::Core;
pub(crate) use crate::neighbours::Ingress;
use crate::pb::{self, request::Kind};
use crate::transfer::buffer;
use crate::wire::delivery::{self, Delivery, Received};
use crate::{ActorError, Placement, wire::header};

/// Answers the requests of remote callers on one listener. Every failure becomes a failure
/// response for that request only: the connection and the pool go on.
pub(crate) struct Service {
    pub(crate) core: Arc<Core>,
    pub(crate) ingress: Ingress,
}

/// The most routes one `Routes` request may carry (a main pool sends one per pool of its
/// host); the routes a sub pool holds are replaced by each, so they never exceed this.
pub(crate) const MAX_ROUTES: usize = 1024;

/// How many pools may forward one request in a row before the next refuses to (a main pool
/// forwards to a sub pool: one hop; a chain can only come from a loop).
pub(crate) const MAX_FORWARD_HOPS: u32 = 4;

impl xoscar_pool::Handler for Service {
    const RESPONDS: bool = true;
    /// Calls wait in their actor's mailbox: a cancel the caller waits on is answered at once
    /// until the actor begins the call.
    const QUEUES: bool = true;

    async fn call(&self, request: Message) -> Message {
        Responder::respond_detached(self, request).await
    }

    fn respond(&self, request: Message, responder: Responder) {
        let Message { header: head, payloads } = request;
        let body = payloads;
        if let Some(delivery) = delivery::decode(&head) {
            return self.deliver(delivery, false, body, responder);
        }
        let bad = |detail: String| ActorError::BadMessage {
            address: self.core.address.to_string(),
            detail,
        };
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
        let (tell, batch, pb::Delivery { uid, message, hops }) = match kind {
            Kind::Call(delivery) => (false, false, delivery),
            Kind::Tell(delivery) => (true, false, delivery),
            Kind::CallBatch(delivery) => (false, true, delivery),
            Kind::TellBatch(delivery) => (true, true, delivery),
            other => {
                if let Kind::Gone(target) = &other {
                    let answer = self.gone(target, &responder);
                    return responder.respond(answer);
                }
                if let Err(error) = self.admit(&other, &responder) {
                    return responder.respond(header::failure(&error));
                }
                // Work on it begins now: a cancel is no longer the pool's to answer.
                responder.begin();
                let core = self.core.clone();
                return self.core.spawn_owned(async move {
                    let response = match manage(&core, other, body).await {
                        Ok(response) => response,
                        Err(error) => header::failure(&error),
                    };
                    responder.respond(response);
                });
            }
        };
        let delivery = Received { tell, uid: uid.as_bytes(), message: message.as_bytes(), hops };
        self.deliver(delivery, batch, body, responder);
    }
}

impl Service {
    /// Whether this listener takes `kind` from this peer: `Routes` only on a sub pool's internal
    /// socket and from its main pool's process (its pid, as the kernel reports it for a
    /// Unix-socket peer).
    fn admit(&self, kind: &Kind, responder: &Responder) -> Result<(), ActorError> {
        let allowed = match kind {
            Kind::Routes(_) => match self.ingress {
                Ingress::SubPoolInternal { main_pid } => responder.peer_pid() == Some(main_pid),
                _ => false,
            },
            _ => true,
        };
        if allowed {
            return Ok(());
        }
        let reason = "routes are taken only from the main pool over a sub pool's internal socket";
        Err(ActorError::Forbidden { address: self.core.address.to_string(), reason: reason.into() })
    }

    /// A `Gone` notice: taken only on a main pool's internal socket, from one of its sub
    /// pools' processes, and it forgets only what lived in that sub pool.
    fn gone(&self, target: &pb::Target, responder: &Responder) -> Message {
        let taken = match (self.ingress, responder.peer_pid(), self.core.neighbours()) {
            (Ingress::MainInternal, Some(pid), Some(neighbours)) => {
                neighbours.gone_from(pid, &target.uid)
            }
            _ => false,
        };
        if !taken {
            let reason = "actor-gone notices are taken only from sub pools over their main pool's internal socket";
            let error = ActorError::Forbidden {
                address: self.core.address.to_string(),
                reason: reason.into(),
            };
            return header::failure(&error);
        }
        header::done(pb::Done::default())
    }

    /// Queues a call or tell for its actor. A call's responder travels with the message and
    /// the actor answers; a tell is answered once the mailbox took it.
    /// `batch`: the body holds a batch of the message. An actor this pool does not hold, but
    /// one of its sub pools does, gets the request forwarded there, one hop further.
    fn deliver(&self, delivery: Received<'_>, batch: bool, body: Payloads, responder: Responder) {
        let cell = match self.core.borrow_cell(delivery.uid) {
            Some(cell) => cell,
            None => {
                let error = self.core.not_found(&String::from_utf8_lossy(delivery.uid));
                let Some(neighbours) = self.core.neighbours().filter(|n| n.any()) else {
                    return responder.respond(header::failure(&error));
                };
                if delivery.hops >= MAX_FORWARD_HOPS {
                    let error = ActorError::Forbidden {
                        address: self.core.address.to_string(),
                        reason: format!("forwarded {} times already: a loop", delivery.hops),
                    };
                    return responder.respond(header::failure(&error));
                }
                // Sent on as text: a uid or message name that is not UTF-8 goes no further.
                let Some(onward) = delivery.text() else {
                    let error = ActorError::BadMessage {
                        address: self.core.address.to_string(),
                        detail: "a uid or message name that is not UTF-8".to_owned(),
                    };
                    return responder.respond(header::failure(&error));
                };
                let onward = Delivery { hops: delivery.hops + 1, ..onward };
                let head = match batch {
                    false => delivery::encode(onward),
                    true => crate::actor::batch::request_header(onward),
                };
                let request = Message::new(head, body);
                // Forwarding begins now; a cancel reaches the sub pool through it.
                responder.begin();
                return neighbours.clone().forward(onward.uid.into(), request, responder);
            }
        };
        if delivery.tell {
            let queued = cell.deliver_remote((delivery.message, batch), body, &mut None);
            // The registry's read lock is held no longer than the queueing.
            drop(cell);
            match queued {
                Ok(None) => responder.respond(Message::default()),
                Ok(Some(wait)) => self.core.spawn_owned(async move {
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
        let queued = cell.deliver_remote((delivery.message, batch), body, &mut reply);
        drop(cell);
        match queued {
            Ok(None) => {}
            // Should the actor stop before there is room, the message is dropped with its
            // responder, which then answers `Stopped`.
            Ok(Some(wait)) => self.core.spawn_owned(async move {
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
                false => core.locate_elsewhere(&target.uid).await,
            };
            let present = elsewhere.is_some() || core.has(&target.uid);
            let address = elsewhere.map(|at| at.to_string()).unwrap_or_default();
            Ok(header::done(pb::Done { uid: target.uid, present, address }))
        }
        Kind::Destroy(target) => {
            if !core.has(&target.uid)
                && let Some(neighbours) = core.neighbours()
                && let Some(at) = neighbours.locate(&target.uid).await
            {
                neighbours.destroy_at(&at, &target.uid).await?;
            } else {
                core.destroy(&target.uid).await?;
            }
            Ok(header::done(pb::Done { uid: target.uid, present: false, address: String::new() }))
        }
        Kind::Routes(pb::Routes { routes }) => {
            let bad = |detail: String| ActorError::BadMessage {
                address: core.address.to_string(),
                detail,
            };
            if routes.len() > MAX_ROUTES {
                return Err(bad(format!("{} routes, more than {MAX_ROUTES}", routes.len())));
            }
            let mut parsed = Vec::with_capacity(routes.len());
            for route in routes {
                let parse = |text: &str| -> Result<Address, ActorError> {
                    text.parse().map_err(|e| bad(format!("route: {e}")))
                };
                let (external, internal) = (parse(&route.external)?, parse(&route.internal)?);
                // Never re-route this pool's own address (it serves it).
                if external != core.address {
                    parsed.push((external, internal));
                }
            }
            let Some(neighbours) = core.neighbours() else {
                let reason = "a pool with no neighbours takes no routes".into();
                return Err(ActorError::Forbidden { address: core.address.to_string(), reason });
            };
            neighbours.routes(parsed)?;
            Ok(header::done(pb::Done::default()))
        }
        Kind::WriteBuffer(write) => {
            buffer::write(core, write.buffer, write.key, write.offset, body).await?;
            Ok(header::done(pb::Done::default()))
        }
        Kind::Call(_) | Kind::Tell(_) | Kind::CallBatch(_) | Kind::TellBatch(_) | Kind::Gone(_) => {
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
        let service = Service { core: pool.handle().core.clone(), ingress: Ingress::Public };
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

    /// No remote messages: every name is unknown to it.
    struct Quiet;

    impl crate::Actor for Quiet {}

    /// A call header whose uid or message name is not UTF-8 (read without a check on the hot
    /// path) is answered: no actor has that uid, and no handler that name.
    #[tokio::test]
    async fn names_that_are_not_utf8_are_answered_not_found_and_no_handler() {
        let pool = ActorPool::start("inproc://service-utf8-test".parse().unwrap()).await.unwrap();
        pool.create(Quiet).uid("quiet").await.unwrap();
        let service = Service { core: pool.handle().core.clone(), ingress: Ingress::Public };
        let kind_of = |response: Message| match pb::Reply::decode(response.header).unwrap().outcome
        {
            Some(pb::reply::Outcome::Failure(failure)) => failure.kind,
            other => panic!("a failure, not {other:?}"),
        };
        for (uid, message, kind) in [
            (&b"\xffq"[..], &b"Echo"[..], pb::ErrorKind::NotFound),
            (&b"quiet"[..], &b"E\xff"[..], pb::ErrorKind::NoHandler),
        ] {
            let mut header = vec![0x0a, (4 + uid.len() + message.len()) as u8];
            header.extend([0x0a, uid.len() as u8]);
            header.extend(uid);
            header.extend([0x12, message.len() as u8]);
            header.extend(message);
            let response = service.call(Message::new(header, Vec::new())).await;
            assert_eq!(kind_of(response), kind as i32, "{uid:?} {message:?}");
        }
    }
}
