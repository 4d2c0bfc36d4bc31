//! Transfer: references to buffers a pool exposes ([`crate::BufferRef`]), the pool's side of
//! the writes into them, and [`crate::copy_to`], which writes bytes into them in chunks from
//! any process.
//!
//! Uses the call module and those below it.

pub(crate) mod buffer;
pub(crate) mod copy;
