//! The private directory of a main pool: where it and its sub pools put their internal Unix
//! sockets. Made `0700` under a fresh random name, so no other user can reach those sockets or
//! squat their names beforehand; removed with everything in it when the main pool goes.

use std::path::{Path, PathBuf};

use crate::ActorError;

/// A directory only this user may enter, removed (with its contents) when dropped.
#[derive(Debug)]
pub(crate) struct PrivateDir {
    path: PathBuf,
}

impl PrivateDir {
    /// Makes a new directory `xoscar-<pid>-<random>` in the system's temporary directory,
    /// after removing those a main pool killed by SIGKILL left behind.
    pub(crate) fn create() -> Result<PrivateDir, ActorError> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        remove_stale(&base);
        let mut builder = std::fs::DirBuilder::new();
        builder.mode(0o700);
        let mut last_error = None;
        for _ in 0..16 {
            let name = format!("xoscar-{}-{:016x}", std::process::id(), rand::random::<u64>());
            let path = base.join(name);
            // `create` fails if the name exists (whoever made it): never reuse a directory.
            match builder.create(&path) {
                Ok(()) => return Ok(PrivateDir { path }),
                Err(error) => last_error = Some(error),
            }
        }
        let error = last_error.map(|e| e.to_string()).unwrap_or_default();
        Err(ActorError::Setup {
            address: base.display().to_string(),
            reason: format!("cannot make a private directory for the sub pools' sockets: {error}"),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes the private directories of this user's main pools whose process is gone (killed
/// with SIGKILL, so its own drop never ran). A process that still runs keeps its directory.
fn remove_stale(base: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(base) else { return };
    let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = stale_pid(&name.to_string_lossy()) else { continue };
        let owned = entry.metadata().is_ok_and(|m| m.is_dir() && Some(m.uid()) == me);
        if owned && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The pid in a private directory's name, `xoscar-<pid>-<16 hex digits>`.
fn stale_pid(name: &str) -> Option<u32> {
    let (pid, random) = name.strip_prefix("xoscar-")?.split_once('-')?;
    let hex = random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| pid.parse().ok()).flatten()
}
