//! The main pool's side: start each sub pool's process, wait until it serves, forward its
//! output tagged, and kill it when the main pool goes.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;
use xoscar_transport::Address;

use xoscar_pool::ENV_AUTH_TOKEN;

use crate::spec::{
    ENV_ADDRESS, ENV_INTERNAL, ENV_LABEL, ENV_MAIN, ENV_PARENT, ENV_SUB_POOL, READY, SubPool,
    SubPoolInfo,
};
use xoscar_actor::ActorError;

/// A sub pool that dies (by itself) within this of its start died right after it started:
/// it is restarted after a back-off (the monitor's `backoff`).
pub(crate) const QUICK_DEATH: Duration = Duration::from_secs(5);

/// Sub pool `index`'s internal socket in the main pool's private directory `dir`.
pub(crate) fn socket_in(dir: &std::path::Path, index: usize) -> Address {
    Address::unix(dir.join(format!("sub-{index}.sock")))
}

/// How long a sub pool may take to serve before its start fails.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines of a sub pool's stderr kept to explain a failed start.
const KEPT_LINES: usize = 5;

/// A running sub pool's process: SIGKILLed when dropped, and reaped by tokio's reaper in the
/// background (nothing here waits for a process on a runtime thread). Its stdin is the sub
/// pool's lifeline: when this process ends, the pipe closes and the sub pool exits.
pub(crate) struct SubPoolProcess {
    pub(crate) info: SubPoolInfo,
    /// How it was started, with the address it got: a restart reuses both addresses.
    pub(crate) spec: SubPool,
    /// When it was started: one that dies soon after is restarted with a back-off.
    started: tokio::time::Instant,
    /// How many times in a row it died right after it started, before this start.
    pub(crate) quick_deaths: u32,
    /// Killed on purpose ([`SubPoolProcess::kill`]): its death is no crash.
    killed: bool,
    child: tokio::process::Child,
    _lifeline: tokio::process::ChildStdin,
    /// Its exit status, once reaped.
    status: Option<std::process::ExitStatus>,
}

impl SubPoolProcess {
    /// Its exit status, once it has exited (never waits).
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Sends it SIGKILL (never waits): the next look sees it dead, like any other death.
    pub(crate) fn kill(&mut self) {
        self.killed = true;
        let _ = self.child.start_kill();
    }

    /// Whether it was killed on purpose.
    pub(crate) fn is_killed(&self) -> bool {
        self.killed
    }

    /// It died by itself within [`QUICK_DEATH`] of its start.
    pub(crate) fn died_quickly(&self) -> bool {
        !self.killed && self.started.elapsed() < QUICK_DEATH
    }
}

impl Drop for SubPoolProcess {
    fn drop(&mut self) {
        // `kill_on_drop`: tokio SIGKILLs it and reaps it in the background.
        let _ = self.child.start_kill();
        if let Address::Unix(path) = &self.info.internal {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Starts every sub pool and waits until all serve. On any failure the ones started are
/// killed, and the error names the sub pool and why.
pub(crate) async fn start_all(
    specs: Vec<SubPool>,
    dir: &std::path::Path,
    main: &Address,
) -> Result<Vec<SubPoolProcess>, ActorError> {
    let mut starting = Vec::with_capacity(specs.len());
    for (index, spec) in specs.into_iter().enumerate() {
        starting.push(start(index, spec, socket_in(dir, index), Some(main))?);
    }
    let mut running = Vec::with_capacity(starting.len());
    for starting in starting {
        running.push(serving(starting).await?);
    }
    Ok(running)
}

/// Starts sub pool `index` with its internal Unix socket at `internal` (a restart: the one
/// it had) and waits until it serves. `main`: the main pool's internal socket.
pub(crate) async fn start_one(
    index: usize,
    spec: SubPool,
    internal: Address,
    main: Option<&Address>,
) -> Result<SubPoolProcess, ActorError> {
    serving(start(index, spec, internal, main)?).await
}

/// Waits until a started sub pool serves; an error naming it and why if it exits first.
async fn serving(
    (mut process, ready, StderrTail { lines, closed }): Starting,
) -> Result<SubPoolProcess, ActorError> {
    let index = process.info.index;
    let failed = |why: String| failure(index, &process.info.label, why);
    let address = match tokio::time::timeout(START_TIMEOUT, ready).await {
        Ok(Ok(address)) => address,
        Ok(Err(_)) => {
            // Its stdout closed before it served: it exited (or closed stdout).
            let exit = tokio::time::timeout(Duration::from_secs(1), process.child.wait()).await;
            let status = match exit {
                Ok(Ok(status)) => status.to_string(),
                _ => "still running".to_owned(),
            };
            // Its last words may still be in the pipe: they are read until it closes (the
            // process, and any child sharing the pipe, ended), for a second at most.
            let _ = tokio::time::timeout(Duration::from_secs(1), closed).await;
            let said: Vec<String> = lines.lock().iter().cloned().collect();
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

type Starting = (SubPoolProcess, oneshot::Receiver<Address>, StderrTail);

/// The last lines of a sub pool's stderr, and when its pipe closed.
struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    /// Resolves (with an error: nothing is sent) once the reading thread saw the pipe close.
    closed: oneshot::Receiver<()>,
}

fn start(
    index: usize,
    spec: SubPool,
    internal: Address,
    main: Option<&Address>,
) -> Result<Starting, ActorError> {
    let pid = std::process::id();
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
        .env(ENV_MAIN, main.map(Address::to_string).unwrap_or_default())
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
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    let cannot = |what: &str, error: std::io::Error| {
        failure(index, &spec.label, format!("cannot {what} {}: {error}", program.display()))
    };
    let mut child = command.spawn().map_err(|error| cannot("run", error))?;
    let lifeline = child.stdin.take().expect("piped stdin");
    // Read by threads of their own with blocking reads (lines from a child, rarely many).
    let stdout = child.stdout.take().expect("piped stdout").into_owned_fd();
    let stdout = std::fs::File::from(stdout.map_err(|error| cannot("read the output of", error))?);
    let stderr = child.stderr.take().expect("piped stderr").into_owned_fd();
    let stderr = std::fs::File::from(stderr.map_err(|error| cannot("read the output of", error))?);
    let tag =
        format!("[sub pool {index}{}{}]", if spec.label.is_empty() { "" } else { " " }, spec.label);
    let (ready, readied) = oneshot::channel();
    forward_stdout(stdout, tag.clone(), ready);
    let kept = forward_stderr(stderr, tag);
    let (label, address, pid) = (spec.label.clone(), spec.address.clone(), child.id());
    let info = SubPoolInfo { index, label, address, internal, pid: pid.unwrap_or_default() };
    let started = tokio::time::Instant::now();
    let process = SubPoolProcess {
        info,
        spec,
        started,
        quick_deaths: 0,
        killed: false,
        child,
        _lifeline: lifeline,
        status: None,
    };
    Ok((process, readied, kept))
}

/// Reads the sub pool's stdout on a thread of its own until the pipe closes (the process
/// ended): the ready line goes to `ready`, every other line to our stdout, tagged.
fn forward_stdout(stdout: std::fs::File, tag: String, ready: oneshot::Sender<Address>) {
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
fn forward_stderr(stderr: std::fs::File, tag: String) -> StderrTail {
    let kept = Arc::new(Mutex::new(VecDeque::with_capacity(KEPT_LINES)));
    let keep = kept.clone();
    let (close, closed) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        // Dropped when the thread ends, after the last line is kept.
        let _close = close;
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
    StderrTail { lines: kept, closed }
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
