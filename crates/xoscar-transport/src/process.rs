//! This process's mark in the handshake (`Hello.process`): a random number drawn once, so that
//! each end of a connection can tell whether the other is in the same process. Random rather
//! than the pid: pids repeat across hosts and containers, and a process id is not secret
//! anyway, while this number says nothing about the process beyond its sameness.

use std::sync::LazyLock;

/// This process's mark: drawn at first use, then the same for every connection; 0 if no
/// random number could be drawn (then no peer is ever taken for this process).
pub(crate) fn mark() -> u64 {
    static MARK: LazyLock<u64> = LazyLock::new(|| {
        let mut bytes = [0; 8];
        match getrandom::fill(&mut bytes) {
            Ok(()) => u64::from_ne_bytes(bytes),
            Err(_) => 0,
        }
    });
    *MARK
}

/// Whether a peer that sent `theirs` as its mark is this process (a mark of 0 says nothing).
pub(crate) fn is_this_process(theirs: u64) -> bool {
    theirs != 0 && theirs == mark()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_is_drawn_once_and_only_an_equal_nonzero_mark_is_this_process() {
        let mark = mark();
        assert_ne!(mark, 0, "getrandom works on every supported platform");
        assert_eq!(mark, super::mark());
        assert!(is_this_process(mark));
        assert!(!is_this_process(0));
        assert!(!is_this_process(mark.wrapping_add(1)));
    }
}
