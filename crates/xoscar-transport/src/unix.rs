//! Unix domain stream sockets: stale socket files are cleared at bind, and the listener removes
//! its own file when dropped.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use socket2::{Domain, SockAddr, Socket, Type};
use tokio::net::{UnixListener, UnixStream};

use crate::stream::{BoxRead, BoxWrite};
use crate::{TransportConfig, TransportError};

/// Removes the socket file when the listener is dropped, if it is still the one we created.
pub(crate) struct SocketFile {
    path: PathBuf,
    identity: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        let ours = std::fs::symlink_metadata(&self.path)
            .is_ok_and(|meta| (meta.dev(), meta.ino()) == self.identity);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Clears a stale socket file at `path`: one nobody listens on any more. A live socket or a file
/// that is not a socket is left alone and reported.
fn clear_stale(path: &Path, label: &str) -> Result<(), TransportError> {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
    let in_use = |reason| TransportError::AddressInUse { address: label.to_string(), reason };
    if !meta.file_type().is_socket() {
        return Err(in_use("a file that is not a socket exists at that path"));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(in_use("another listener is accepting on that socket")),
        Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
            tracing::debug!(path = %path.display(), "removing stale unix socket file");
            std::fs::remove_file(path).map_err(|source| TransportError::Io {
                operation: "remove the stale socket file of",
                address: label.to_string(),
                source,
            })
        }
        // Busy (full backlog) still means someone listens.
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
            Err(in_use("another listener is accepting on that socket"))
        }
        Err(source) => Err(TransportError::Io {
            operation: "probe the socket file of",
            address: label.to_string(),
            source,
        }),
    }
}

/// Binds a listener with the configured backlog.
pub(crate) fn bind(
    path: &Path,
    label: &str,
    config: &TransportConfig,
) -> Result<(UnixListener, SocketFile), TransportError> {
    clear_stale(path, label)?;
    let listen_err = |source: io::Error| match source.kind() {
        io::ErrorKind::AddrInUse => TransportError::AddressInUse {
            address: label.to_string(),
            reason: "another socket was bound to it meanwhile",
        },
        _ => TransportError::Io { operation: "listen on", address: label.to_string(), source },
    };
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(listen_err)?;
    socket.set_nonblocking(true).map_err(listen_err)?;
    socket.bind(&SockAddr::unix(path).map_err(listen_err)?).map_err(listen_err)?;
    // Before listen(), while no dial can succeed: only the modes the config allows.
    let mode = std::fs::Permissions::from_mode(config.unix_socket_mode);
    std::fs::set_permissions(path, mode).map_err(listen_err)?;
    let meta = std::fs::symlink_metadata(path).map_err(listen_err)?;
    let file = SocketFile { path: path.to_path_buf(), identity: (meta.dev(), meta.ino()) };
    socket.listen(config.backlog.min(i32::MAX as u32) as i32).map_err(listen_err)?;
    let listener = UnixListener::from_std(socket.into()).map_err(listen_err)?;
    Ok((listener, file))
}

/// Dials the socket at `path`. No socket file is [`TransportError::ConnectionRefused`], a full
/// backlog [`TransportError::ListenerBusy`].
pub(crate) async fn dial(path: &Path, label: &str) -> Result<UnixStream, TransportError> {
    UnixStream::connect(path).await.map_err(|error| TransportError::from_connect_io(label, error))
}

/// Owned halves, type-erased for the shared stream code.
pub(crate) fn split(stream: UnixStream) -> (BoxRead, BoxWrite) {
    let (read, write) = stream.into_split();
    (Box::new(read), Box::new(write))
}
