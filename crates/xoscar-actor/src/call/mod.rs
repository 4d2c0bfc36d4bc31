//! The caller's side: this process's one caller pool and router, reaching an actor (its cell
//! in this process, or an endpoint to dial), and the calls of a ref that may cross
//! processes: call, tell, cancellable calls, streaming calls, create, has and destroy.
//!
//! Uses the actor module and those below it.

pub(crate) mod cancellable;
pub(crate) mod client;
pub(crate) mod host_requests;
pub(crate) mod pipeline;
pub(crate) mod reply_stream;
