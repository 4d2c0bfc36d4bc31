//! The main pool's side: start each sub pool's process, wait until it serves, forward its
//! output tagged, and kill it when the main pool goes.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use xoscar_transport::Address;

use xoscar_pool::ENV_AUTH_TOKEN;

use super::{
    ENV_ADDRESS, ENV_INTERNAL, ENV_LABEL, ENV_PARENT, ENV_SUB_POOL, READY, SubPool, SubPoolInfo,
};
use crate::ActorError;

/// How long a sub pool may take to serve before its start fails.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of a sub pool's stderr kept to explain a failed start.
const KEPT_LINES: usize = 5;

/// A running sub pool's process: SIGKILLed and reaped when dropped. Its stdin is the sub
/// pool's lifeline: when this process ends, the pipe closes and the sub pool exits.
pub(crate) struct SubPoolProcess {
    pub(crate) info: SubPoolInfo,
    /// How it was started, with the address it got: a restart reuses both addresses.
    pub(crate) spec: SubPool,
    child: Child,
    _lifeline: ChildStdin,
    /// Its exit status, once reaped.
    status: Option<std::process::ExitStatus>,
}

impl SubPoolProcess {
    /// Its exit status, once it has exited.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// SIGKILLs it and reaps it (a killed process ends at once), so that its death is seen
    /// by the next look, like any other.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        self.status = self.child.wait().ok();
    }
}

impl Drop for SubPoolProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Address::Unix(path) = &self.info.internal {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Starts every sub pool and waits until all serve. On any failure the ones started are
/// killed, and the error names the sub pool and why.
pub(crate) async fn start_all(specs: Vec<SubPool>) -> Result<Vec<SubPoolProcess>, ActorError> {
    let mut starting = Vec::with_capacity(specs.len());
    for (index, spec) in specs.into_iter().enumerate() {
        starting.push(start(index, spec, None)?);
    }
    let mut running = Vec::with_capacity(starting.len());
    for starting in starting {
        running.push(serving(starting).await?);
    }
    Ok(running)
}

/// Starts sub pool `index` (again: `internal` is the Unix socket it had) and waits until it
/// serves.
pub(crate) async fn start_one(
    index: usize,
    spec: SubPool,
    internal: Option<Address>,
) -> Result<SubPoolProcess, ActorError> {
    serving(start(index, spec, internal)?).await
}

/// Waits until a started sub pool serves; an error naming it and why if it exits first.
async fn serving((mut process, ready, stderr): Starting) -> Result<SubPoolProcess, ActorError> {
    let index = process.info.index;
    let failed = |why: String| failure(index, &process.info.label, why);
    let address = match tokio::time::timeout(START_TIMEOUT, ready).await {
        Ok(Ok(address)) => address,
        Ok(Err(_)) => {
            // Its stdout closed before it served: it exited (or closed stdout).
            let status = process.child.wait().map(|s| s.to_string()).unwrap_or_default();
            let said: Vec<String> = stderr.lock().iter().cloned().collect();
            return Err(failed(format!("exited before serving ({status}): {}", said.join(" | "))));
        }
        Err(_) => return Err(failed(format!("did not serve within {START_TIMEOUT:?}"))),
    };
    process.info.address = address.clone();
    process.spec.address = address;
    Ok(process)
}

fn failure(index: usize, label: &str, why: String) -> ActorError {
    ActorError::Setup { address: format!("sub pool {index} ({label:?})"), reason: why }
}

type Starting = (SubPoolProcess, oneshot::Receiver<Address>, Arc<Mutex<VecDeque<String>>>);

fn start(index: usize, spec: SubPool, internal: Option<Address>) -> Result<Starting, ActorError> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let pid = std::process::id();
    let internal = internal.unwrap_or_else(|| {
        let socket = format!("xoscar-sub-{pid}-{index}-{}.sock", NEXT.fetch_add(1, Relaxed));
        Address::unix(std::env::temp_dir().join(socket))
    });
    if let Address::Unix(path) = &internal {
        // A restart's socket file from before: the new process binds it afresh.
        let _ = std::fs::remove_file(path);
    }
    let (program, args) = match spec.program.clone() {
        Some(program) => program,
        None => {
            let exe = std::env::current_exe()
                .map_err(|error| failure(index, &spec.label, format!("no executable: {error}")))?;
            (exe, std::env::args_os().skip(1).collect())
        }
    };
    let mut command = Command::new(&program);
    command
        .args(&args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env(ENV_SUB_POOL, index.to_string())
        .env(ENV_LABEL, &spec.label)
        .env(ENV_ADDRESS, spec.address.to_string())
        .env(ENV_INTERNAL, internal.to_string())
        .env(ENV_PARENT, pid.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match &spec.auth {
        Some(token) => {
            use std::os::unix::ffi::OsStrExt;
            command.env(ENV_AUTH_TOKEN, std::ffi::OsStr::from_bytes(token.expose_secret()))
        }
        None => command.env_remove(ENV_AUTH_TOKEN),
    };
    die_with_parent(&mut command);
    let mut child = command.spawn().map_err(|error| {
        failure(index, &spec.label, format!("cannot run {}: {error}", program.display()))
    })?;
    let lifeline = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    let tag =
        format!("[sub pool {index}{}{}]", if spec.label.is_empty() { "" } else { " " }, spec.label);
    let (ready, readied) = oneshot::channel();
    forward_stdout(stdout, tag.clone(), ready);
    let kept = forward_stderr(stderr, tag);
    let (label, address, pid) = (spec.label.clone(), spec.address.clone(), child.id());
    let info = SubPoolInfo { index, label, address, internal, pid };
    let process = SubPoolProcess { info, spec, child, _lifeline: lifeline, status: None };
    Ok((process, readied, kept))
}

/// Reads the sub pool's stdout on a thread of its own until the pipe closes (the process
/// ended): the ready line goes to `ready`, every other line to our stdout, tagged.
fn forward_stdout(stdout: std::process::ChildStdout, tag: String, ready: oneshot::Sender<Address>) {
    std::thread::spawn(move || {
        let mut ready = Some(ready);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // The ready line may follow other output on the same line (a test harness's).
            let announced = line.split_once(READY).map(|(_, rest)| rest.trim().parse::<Address>());
            match announced {
                Some(Ok(address)) if ready.is_some() => {
                    let _ = ready.take().expect("checked").send(address);
                }
                _ => println!("{tag} {line}"),
            }
        }
    });
}

/// Forwards the sub pool's stderr to ours, tagged, keeping its last lines.
fn forward_stderr(stderr: std::process::ChildStderr, tag: String) -> Arc<Mutex<VecDeque<String>>> {
    let kept = Arc::new(Mutex::new(VecDeque::with_capacity(KEPT_LINES)));
    let keep = kept.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            eprintln!("{tag} {line}");
            let mut kept = keep.lock();
            if kept.len() == KEPT_LINES {
                kept.pop_front();
            }
            kept.push_back(line);
        }
    });
    kept
}

/// On Linux the kernel also kills the sub pool when the thread that started it ends (a
/// parent-death signal), on top of the stdin lifeline.
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: runs in the child between fork and exec, where only async-signal-safe calls are
    // allowed; prctl(PR_SET_PDEATHSIG) is a plain system call that touches no memory of ours.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_: &mut Command) {}
