//! A `tracing` subscriber that keeps every event as a line of text, with the fields of the
//! spans it happened in, so tests can assert what was logged.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// Every event as `message field=value ... [in span{field=value ...} ...]`, innermost span
/// first. Install it with `tracing::subscriber::set_default` (this thread) or
/// `set_global_default` (a test binary of its own).
#[derive(Clone, Default)]
pub struct Captured {
    lines: Arc<Mutex<Vec<String>>>,
    spans: Arc<Mutex<Vec<String>>>,
}

thread_local! {
    /// The spans entered on this thread, innermost last.
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

impl Captured {
    /// Takes the lines logged so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.lines.lock().unwrap())
    }

    /// Lines logged so far that contain `needle`.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.lines.lock().unwrap().iter().filter(|l| l.contains(needle)).cloned().collect()
    }

    /// Every span made so far, as `name{field=value ...}`.
    pub fn spans(&self) -> Vec<String> {
        self.spans.lock().unwrap().clone()
    }
}

struct Line(String);

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl Subscriber for Captured {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let mut fields = Line(String::new());
        attributes.record(&mut fields);
        let text = format!("{}{{{}}}", attributes.metadata().name(), fields.0.trim_start());
        let mut spans = self.spans.lock().unwrap();
        spans.push(text);
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut line = Line(String::new());
        event.record(&mut line);
        let spans = self.spans.lock().unwrap();
        ENTERED.with(|entered| {
            for id in entered.borrow().iter().rev() {
                if let Some(span) = spans.get(*id as usize - 1) {
                    line.0.push_str(&format!(" in {span}"));
                }
            }
        });
        drop(spans);
        self.lines.lock().unwrap().push(line.0);
    }
    fn enter(&self, id: &Id) {
        ENTERED.with(|entered| entered.borrow_mut().push(id.into_u64()));
    }
    fn exit(&self, id: &Id) {
        ENTERED.with(|entered| {
            let mut entered = entered.borrow_mut();
            if let Some(at) = entered.iter().rposition(|e| *e == id.into_u64()) {
                entered.remove(at);
            }
        });
    }
}
