//! The kind byte of a frame prefix, below the error type that names it.

/// The kind byte of a frame prefix: which envelope message follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// [`crate::pb::Request`].
    Request = 1,
    /// [`crate::pb::Response`].
    Response = 2,
    /// [`crate::pb::Notify`].
    Notify = 3,
    /// [`crate::pb::Cancel`].
    Cancel = 4,
    /// [`crate::pb::Ping`].
    Ping = 5,
    /// [`crate::pb::Pong`].
    Pong = 6,
    /// [`crate::pb::GoAway`].
    GoAway = 7,
    /// [`crate::pb::Credit`].
    Credit = 8,
}

impl FrameKind {
    /// The kind a prefix byte names, if any (see `TryFrom<u8>`, which says why not).
    pub(crate) fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            1 => FrameKind::Request,
            2 => FrameKind::Response,
            3 => FrameKind::Notify,
            4 => FrameKind::Cancel,
            5 => FrameKind::Ping,
            6 => FrameKind::Pong,
            7 => FrameKind::GoAway,
            8 => FrameKind::Credit,
            _ => return None,
        })
    }
}
