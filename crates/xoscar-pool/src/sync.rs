//! The lock that guards connection state: parking_lot's, or loom's when the unit tests are built
//! to model-check the state machines (`cargo xtask loom`, models in `client/loom_model.rs`).
//! The cfg has its own name because `--cfg loom` would also switch tokio into its loom mode.

#[cfg(not(all(test, xoscar_loom)))]
pub(crate) use parking_lot::{Mutex, MutexGuard};

#[cfg(all(test, xoscar_loom))]
pub(crate) use loom_mutex::{Mutex, MutexGuard};

#[cfg(all(test, xoscar_loom))]
mod loom_mutex {
    /// loom's mutex with parking_lot's signature (no poisoning).
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }

        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().expect("no poisoning: a panic fails the model anyway")
        }
    }
}
