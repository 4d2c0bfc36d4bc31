//! The actor: its traits, the context its handlers get, its mailbox and the task that runs
//! it, the pool's registry of actors (the core), refs, and the kinds of message it handles
//! (single, batch, streaming, and those decoded from other processes by its codec table).
//! Everything here works within one process; nothing here dials, serves or spawns.
//!
//! Uses the error, wire, observability and neighbours modules below it.

pub(crate) mod batch;
pub(crate) mod cancel;
pub(crate) mod cell;
pub(crate) mod context;
pub(crate) mod core;
pub(crate) mod envelope;
pub(crate) mod handle;
pub(crate) mod mailbox;
pub(crate) mod overlap;
pub(crate) mod reference;
pub(crate) mod remote;
pub(crate) mod runner;
pub(crate) mod streaming;
pub(crate) mod traits;
