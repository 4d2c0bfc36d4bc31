//! The private directory of a main pool: where it and its sub pools put their internal Unix
//! sockets. Made `0700` under a fresh random name, so no other user can reach those sockets or
//! squat their names beforehand; removed with everything in it when the main pool goes.
//!
//! A main pool holds an exclusive lock (`flock`) on a file in its directory for as long as it
//! lives; the kernel drops it when the process ends, however it ends. So a directory whose
//! lock can be taken belongs to a main pool that is gone (killed by SIGKILL, its drop never
//! ran), and the next main pool on the host removes it. The lock says so across PID
//! namespaces sharing the directory, where a process id would not.

use std::fs::File;
use std::path::{Path, PathBuf};

use xoscar_actor::ActorError;

/// The lock file in each private directory.
const LOCK: &str = "lock";

/// A directory only this user may enter, removed (with its contents) when dropped.
#[derive(Debug)]
pub(crate) struct PrivateDir {
    path: PathBuf,
    /// Locked for the directory's life: it says the directory is in use.
    _lock: File,
}

impl PrivateDir {
    /// Makes a new directory `xoscar-<pid>-<random>` in the system's temporary directory,
    /// after removing those of main pools that are gone. Blocking (directory scans): run it
    /// off the runtime's threads.
    pub(crate) fn create() -> Result<PrivateDir, ActorError> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        remove_stale(&base);
        let mut builder = std::fs::DirBuilder::new();
        builder.mode(0o700);
        let failed = |error: std::io::Error| ActorError::Setup {
            address: base.display().to_string(),
            reason: format!("cannot make a private directory for the sub pools' sockets: {error}"),
        };
        let mut last_error = None;
        for _ in 0..16 {
            let name = format!("xoscar-{}-{:016x}", std::process::id(), rand::random::<u64>());
            let path = base.join(name);
            // `create` fails if the name exists (whoever made it): never reuse a directory.
            match builder.create(&path) {
                Ok(()) => {
                    let lock = File::create(path.join(LOCK)).map_err(failed)?;
                    lock.lock().map_err(failed)?;
                    return Ok(PrivateDir { path, _lock: lock });
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(failed(last_error.unwrap_or_else(|| std::io::Error::other("no name was free"))))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        // A lock file and a few socket files: removing them takes a few short system calls.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes the private directories of this user's main pools that are gone: those whose lock
/// can be taken. A directory without a lock file is left alone.
fn remove_stale(base: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else { return };
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    for entry in entries.flatten() {
        if !is_private_dir_name(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let owned = entry.metadata().is_ok_and(|m| m.is_dir() && Some(m.uid()) == me);
        let Ok(lock) = File::open(entry.path().join(LOCK)) else { continue };
        if owned && lock.try_lock().is_ok() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether `name` is a private directory's, `xoscar-<pid>-<16 hex digits>`.
fn is_private_dir_name(name: &str) -> bool {
    let Some((pid, random)) = name.strip_prefix("xoscar-").and_then(|rest| rest.split_once('-'))
    else {
        return false;
    };
    let hex = random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit());
    hex && pid.parse::<u32>().is_ok()
}
