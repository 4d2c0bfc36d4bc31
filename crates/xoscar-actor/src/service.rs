//! The serving side of an actor pool: a pool handler that dispatches by actor uid.

use std::sync::Arc;

use prost::Message as _;
use tokio::sync::oneshot;
use xoscar_pool::Message;

use crate::core::Core;
use crate::pb::{self, request::Kind};
use crate::{ActorError, header};

/// Answers the requests of remote callers. Every failure becomes a failure response for that
/// request only: the connection and the pool go on.
pub(crate) struct Service(pub(crate) Arc<Core>);

impl xoscar_pool::Handler for Service {
    async fn call(&self, request: Message) -> Message {
        match self.serve(request).await {
            Ok(response) => response,
            Err(error) => header::failure(&error),
        }
    }
}

impl Service {
    async fn serve(&self, request: Message) -> Result<Message, ActorError> {
        let core = &self.0;
        let Message { header: head, payloads } = request;
        let body = payloads.into_iter().next().unwrap_or_default();
        let bad =
            |detail: String| ActorError::BadMessage { address: core.address.to_string(), detail };
        let request = pb::Request::decode(head).map_err(|e| bad(format!("request header: {e}")))?;
        match request.kind.ok_or_else(|| bad("a request header with no kind".to_owned()))? {
            Kind::Call(delivery) => {
                let cell = core.cell(&delivery.uid)?;
                let (reply, response) = oneshot::channel();
                cell.deliver_remote(&delivery.message, body, Some(reply)).await?;
                Ok(response.await.unwrap_or_else(|_| {
                    header::failure(&ActorError::Stopped {
                        address: core.address.to_string(),
                        uid: delivery.uid,
                    })
                }))
            }
            Kind::Tell(delivery) => {
                core.cell(&delivery.uid)?.deliver_remote(&delivery.message, body, None).await?;
                Ok(Message::default())
            }
            Kind::Create(create) => {
                let uid = (!create.uid.is_empty()).then(|| Arc::from(create.uid));
                let uid = core.create_by_name(&create.type_name, body, uid).await?;
                Ok(header::done(pb::Done { uid: uid.to_string(), present: true }))
            }
            Kind::Has(target) => {
                let present = core.has(&target.uid);
                Ok(header::done(pb::Done { uid: target.uid, present }))
            }
            Kind::Destroy(target) => {
                core.destroy(&target.uid).await?;
                Ok(header::done(pb::Done { uid: target.uid, present: false }))
            }
        }
    }
}
