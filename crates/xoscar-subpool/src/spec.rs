//! What a sub pool is before it starts ([`SubPool`]) and once it runs ([`SubPoolInfo`]), and
//! the environment a main pool starts its process with.

use std::ffi::OsString;
use std::path::PathBuf;

use xoscar_transport::Address;

/// Set in a sub pool's environment: its index among the main pool's sub pools.
pub const ENV_SUB_POOL: &str = "XOSCAR_SUB_POOL";
pub(crate) const ENV_LABEL: &str = "XOSCAR_SUB_POOL_LABEL";
pub(crate) const ENV_ADDRESS: &str = "XOSCAR_SUB_POOL_ADDRESS";
pub(crate) const ENV_INTERNAL: &str = "XOSCAR_SUB_POOL_INTERNAL";
pub(crate) const ENV_PARENT: &str = "XOSCAR_SUB_POOL_PARENT";
/// The main pool's internal Unix socket (empty: none), where a sub pool reports actors gone.
pub(crate) const ENV_MAIN: &str = "XOSCAR_SUB_POOL_MAIN";
/// The line a sub pool prints once it serves, followed by its address.
pub(crate) const READY: &str = "XOSCAR_SUB_POOL_READY";

/// One sub pool of a main pool, before it starts: every method states its default.
#[derive(Debug, Clone)]
pub struct SubPool {
    pub(crate) label: String,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) address: Address,
    pub(crate) program: Option<(PathBuf, Vec<OsString>)>,
    /// The main pool's shared secret, given to the process as `XOSCAR_AUTH_TOKEN`.
    pub(crate) auth: Option<xoscar_transport::AuthToken>,
}

impl Default for SubPool {
    fn default() -> Self {
        SubPool {
            label: String::new(),
            env: Vec::new(),
            address: Address::tcp(([127, 0, 0, 1], 0).into()),
            program: None,
            auth: None,
        }
    }
}

impl SubPool {
    /// A sub pool with the defaults below.
    pub fn new() -> Self {
        SubPool::default()
    }

    /// A label to place actors by (e.g. `"gpu"`), also tagging the sub pool's log lines.
    /// Default: none (empty).
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Sets an environment variable in the sub pool's process (e.g. `CUDA_VISIBLE_DEVICES`),
    /// on top of the main process's environment. `XOSCAR_AUTH_TOKEN` is the exception: a sub
    /// pool always gets its main pool's shared secret, or none. Default: the main process's
    /// environment.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The sub pool's external address (TCP with port 0 allowed). It also listens on an
    /// internal Unix socket of its own, which the main process uses. Default:
    /// `127.0.0.1:0`.
    pub fn address(mut self, address: Address) -> Self {
        self.address = address;
        self
    }

    /// Runs `program` with `args` instead of re-running this executable with its own
    /// arguments (a test binary, for instance, passes the filter of the test that calls
    /// [`crate::run_if_sub_pool`]). Default: this executable, with the arguments it was given.
    pub fn program(
        mut self,
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
    ) -> Self {
        self.program = Some((program.into(), args.into_iter().map(Into::into).collect()));
        self
    }
}

/// A running sub pool, as its main pool reports it ([`crate::MainPool::sub_pools`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubPoolInfo {
    /// Its index among the main pool's sub pools, from 0.
    pub index: usize,
    /// Its label.
    pub label: String,
    /// Its external address (the one its actors' refs carry).
    pub address: Address,
    /// Its internal Unix-socket address, which this process maps the external one to.
    pub internal: Address,
    /// Its process id.
    pub pid: u32,
}
