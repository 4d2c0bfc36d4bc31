//! The connection's writer, shared by its read side (answers ready at once, pongs) and its write
//! side (answers from handler tasks, control frames). Both sides run in the connection's one
//! task, so they never write at the same instant; they only must not interleave their awaits on
//! the writer. Whoever writes takes it out of its slot and puts it back when done; a side that
//! finds it taken queues its frame (read side) or waits for it to come back (write side). This
//! replaced tokio's async mutex, whose semaphore cost about 100 instructions per answer.

use std::ops::{Deref, DerefMut};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

use parking_lot::Mutex;
use tokio::sync::Notify;
use xoscar_transport::{FrameWriter, TransportError};
use xoscar_wire::{Frame, WireError};

pub(crate) struct SharedWriter {
    /// Boxed, so taking and returning it moves a pointer, not the writer.
    slot: Mutex<Option<Box<FrameWriter>>>,
    /// Sides waiting in [`SharedWriter::take`]: a return wakes them only when there are any.
    waiting: AtomicUsize,
    returned: Notify,
    /// The connection's task ended: the writer is dropped, and one out of its slot is
    /// dropped when returned, so the socket closes with the task even while a handler's
    /// responder (which holds the connection) lives on.
    retired: AtomicBool,
}

/// What [`SharedWriter::write_alone`] did with a frame.
pub(crate) enum Alone {
    /// Taken by the writer. `unflushed`: some of it is still queued (the socket could take no
    /// more), or the write failed: the write side must flush, and finds out.
    Fed { unflushed: bool },
    /// Not taken, here it is back: the writer is out of its slot or its queue is full.
    Busy(Frame),
    /// Over the frame limits: refused by the encoder, nothing queued.
    TooLarge(WireError),
}

impl SharedWriter {
    pub(crate) fn new(writer: FrameWriter) -> Self {
        SharedWriter {
            slot: Mutex::new(Some(Box::new(writer))),
            waiting: AtomicUsize::new(0),
            returned: Notify::new(),
            retired: AtomicBool::new(false),
        }
    }

    /// Writes `frame` and flushes it without waiting, if the writer is in its slot: for an
    /// answer given from a handler's own task while nothing else is owed on the connection,
    /// which would otherwise wake the connection's task to write it.
    pub(crate) fn write_alone(&self, frame: Frame) -> Alone {
        let Some(mut writer) = self.try_take() else { return Alone::Busy(frame) };
        match writer.try_feed(frame) {
            Ok(None) => {}
            Ok(Some(frame)) => return Alone::Busy(frame),
            Err(TransportError::Protocol { source, .. }) => return Alone::TooLarge(source),
            // The connection broke (the frame is lost with it): the write side's flush ends
            // the connection.
            Err(_) => return Alone::Fed { unflushed: true },
        }
        Alone::Fed { unflushed: !matches!(writer.try_flush(), Ok(true)) }
    }

    /// Drops the writer now, and any taken out of its slot once returned.
    pub(crate) fn retire(&self) {
        self.retired.store(true, SeqCst);
        let writer = self.slot.lock().take();
        drop(writer);
    }

    /// The writer, if nobody has it now.
    pub(crate) fn try_take(&self) -> Option<TakenWriter<'_>> {
        let writer = self.slot.lock().take()?;
        Some(TakenWriter { shared: self, writer: Some(writer) })
    }

    /// The writer, waiting until it is put back if somebody has it.
    pub(crate) async fn take(&self) -> TakenWriter<'_> {
        if let Some(taken) = self.try_take() {
            return taken;
        }
        let _waiting = Waiting::new(&self.waiting);
        loop {
            let returned = self.returned.notified();
            let mut returned = pin!(returned);
            // Registered (and counted as waiting) before looking, so a return in between is
            // not missed.
            returned.as_mut().enable();
            if let Some(taken) = self.try_take() {
                return taken;
            }
            returned.await;
        }
    }
}

/// The writer, taken out of its slot; put back on drop (also when the future using it is
/// dropped mid-write).
pub(crate) struct TakenWriter<'a> {
    shared: &'a SharedWriter,
    writer: Option<Box<FrameWriter>>,
}

impl Deref for TakenWriter<'_> {
    type Target = FrameWriter;

    fn deref(&self) -> &FrameWriter {
        self.writer.as_ref().expect("present until dropped")
    }
}

impl DerefMut for TakenWriter<'_> {
    fn deref_mut(&mut self) -> &mut FrameWriter {
        self.writer.as_mut().expect("present until dropped")
    }
}

impl Drop for TakenWriter<'_> {
    fn drop(&mut self) {
        let writer = self.writer.take();
        {
            // Looked at under the slot's lock, which `retire` takes after marking: a writer
            // returned before the mark is taken by `retire`, one after it is dropped here.
            let mut slot = self.shared.slot.lock();
            if !self.shared.retired.load(SeqCst) {
                *slot = writer;
            }
        }
        if self.shared.waiting.load(SeqCst) > 0 {
            self.shared.returned.notify_waiters();
        }
    }
}

/// Counts a side as waiting for the writer while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, SeqCst);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, SeqCst);
    }
}
