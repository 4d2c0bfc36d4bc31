//! [`PyActor`]: a Python object living in a pool, seen by the runtime as a Rust actor whose
//! one message, a call, is the pickled `(method, kind, args, kwargs)` as `Bytes` (so that it
//! travels as one payload, never copied); its reply is the
//! pickled outcome (`xoscar_rs._actor` writes and reads both). Routing, mailboxes, flow
//! control and cancellation are the runtime's, as for any actor.
//!
//! Uses the bridge.

use std::sync::Arc;

use bytes::Bytes;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use xoscar::{Actor, Context, Failure, Handler, RemoteMessages, Streaming};

use crate::bridge::{LoopBridge, Value};
use crate::buffer::SharedBytes;

/// The type name Python actors are created under, in every pool.
pub(crate) const TYPE_NAME: &str = "xoscar_rs.Actor";
/// How many calls of one Python actor are handed to its loop at once. The runtime runs every
/// Python actor as a concurrent one: a serial `xo.Actor` queues them on its own
/// `asyncio.Lock` in the order they arrived (hooks and `@no_lock` methods skip it), as xoscar
/// does. xoscar has no limit; this one bounds the coroutines a flood of calls can start (the
/// rest wait in the bounded mailbox).
pub(crate) const CONCURRENT_LIMIT: usize = 1024;
/// Marks a failed create's message: the pickled exception follows, in hex, for the creator
/// in Python to raise as it was raised.
pub(crate) const PICKLED_ERROR: &str = "xoscar_rs.pickled_error:";
/// The name a call (`Bytes`) travels under.
pub(crate) const CALL: &str = "xoscar_rs.call";
/// The name [`PyStream`] travels under.
pub(crate) const STREAM: &str = "xoscar_rs.stream";
/// The first byte of a generator's item that says it has no more (`xoscar_rs._actor.END`).
const END: u8 = 2;
/// The first byte of an outcome that is an exception (`xoscar_rs._actor.RAISED`).
const RAISED: u8 = 1;

/// A pull of the items of one of a Python actor's generators (`@xo.generator`), streamed to
/// the caller with the runtime's credit-based flow control.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PyStream {
    /// The pickled id of the generator, as `xoscar_rs._actor` keeps it.
    #[prost(bytes = "bytes", tag = "1")]
    pub generator: Bytes,
}

/// A Python actor: built in its pool's process on [`Actor::on_start`] from its pickled class
/// and arguments, its methods run on the pool's asyncio loop.
#[derive(Clone)]
pub struct PyActor {
    /// `(cls, args, kwargs)`, pickled; taken when the instance is built.
    init: Option<Bytes>,
    instance: Option<Arc<Py<PyAny>>>,
    host: Arc<LoopBridge>,
}

impl PyActor {
    /// An actor to be built from `init` (pickled `(cls, args, kwargs)`) on `host`'s loop.
    pub(crate) fn new(init: Bytes, host: Arc<LoopBridge>) -> Self {
        PyActor { init: Some(init), instance: None, host }
    }

    fn instance(&self) -> Result<&Arc<Py<PyAny>>, Failure> {
        self.instance.as_ref().ok_or_else(|| Failure::msg("the Python actor was never built"))
    }
}

impl Actor for PyActor {
    fn remote_messages(messages: &mut RemoteMessages<Self>) {
        messages.message::<Bytes>(CALL).stream::<PyStream, Bytes>(STREAM);
    }

    async fn on_start(&mut self, ctx: &mut Context<Self>) -> Result<(), Failure> {
        let init = self.init.take().unwrap_or_default();
        let (address, uid) = (ctx.actor_ref().address().to_string(), ctx.uid().to_owned());
        let instance = self
            .host
            .run(move |py| {
                let build = py.import("xoscar_rs._actor")?.getattr("build")?;
                Ok(build.call1((PyBytes::new(py, &init), address, uid))?.unbind())
            })
            .await?;
        match instance {
            Value::Object(instance) => {
                self.instance = Some(Arc::new(instance));
                Ok(())
            }
            error => raised(error),
        }
    }

    async fn on_stop(&mut self, _: &mut Context<Self>) -> Result<(), Failure> {
        let instance = self.instance()?.clone();
        let outcome = self
            .host
            .run(move |py| {
                let pre_destroy = py.import("xoscar_rs._actor")?.getattr("pre_destroy")?;
                Ok(pre_destroy.call1((&*instance,))?.unbind())
            })
            .await?;
        raised(outcome)
    }
}

/// A call: the pickled `(method, kind, args, kwargs)`, as `xoscar_rs._actor` reads it.
impl Handler<Bytes> for PyActor {
    /// The pickled outcome: a status byte, then the value or the exception.
    type Reply = Bytes;

    async fn handle(&mut self, call: Bytes, ctx: &mut Context<Self>) -> Result<Bytes, Failure> {
        let instance = self.instance()?.clone();
        // A cancel reaches the method as CancelledError where it waits; what the method
        // then returns (or raises) is still the caller's answer, as in xoscar.
        let cancellation = ctx.cancellation();
        let invoke = move |py: Python<'_>| {
            let invoke = py.import("xoscar_rs._actor")?.getattr("invoke")?;
            let call = SharedBytes::lend(py, call)?;
            Ok(invoke.call1((&*instance, call))?.unbind())
        };
        let reply = self.host.run_watching(invoke, cancellation.cancelled()).await?;
        match reply {
            Value::Bytes(reply) => Ok(reply),
            Value::Object(_) => Err(not_bytes()),
        }
    }
}

impl Handler<PyStream> for PyActor {
    /// Each item's pickled outcome; an exception is the last item.
    type Reply = Streaming<Bytes>;

    async fn handle(
        &mut self,
        pull: PyStream,
        _: &mut Context<Self>,
    ) -> Result<Streaming<Bytes>, Failure> {
        let (instance, host) = (self.instance()?.clone(), self.host.clone());
        // One item per trip to the loop; the runtime pulls ahead as the caller's credit
        // allows, and dropping the stream (the caller gone) cancels the pull in flight.
        let items = xoscar::stream::unfold(false, move |ended| {
            let (instance, host, generator) =
                (instance.clone(), host.clone(), pull.generator.clone());
            async move {
                if ended {
                    return None;
                }
                let next = host
                    .run(move |py| {
                        let next_item = py.import("xoscar_rs._actor")?.getattr("next_item")?;
                        Ok(next_item.call1((&*instance, PyBytes::new(py, &generator)))?.unbind())
                    })
                    .await;
                match next {
                    Err(failure) => Some((Err(failure), true)),
                    Ok(Value::Bytes(item)) if item.first() == Some(&END) => None,
                    Ok(Value::Bytes(item)) => {
                        let last = item.first() == Some(&RAISED);
                        Some((Ok(item), last))
                    }
                    Ok(Value::Object(_)) => Some((Err(not_bytes()), true)),
                }
            }
        });
        Ok(Streaming::new(items))
    }
}

fn not_bytes() -> Failure {
    Failure::msg("xoscar_rs._actor returned something other than bytes")
}

/// A hook's outcome: bytes are the pickled error it raised (a failure carrying them, for the
/// Python caller to raise as raised); anything else is success.
fn raised(outcome: Value) -> Result<(), Failure> {
    match outcome {
        Value::Bytes(error) => Err(Failure::msg(format!("{PICKLED_ERROR}{}", hex(&error)))),
        Value::Object(_) => Ok(()),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}
