//! Test hosts: two Linux network namespaces joined by a veth pair, each with an address of
//! its own, for tests of what crosses a real network (iptables rules that drop a session, as a
//! NAT does). Needs root and iproute2 + iptables; `cargo xtask netns` runs the tests that use
//! it.
//!
//! Cleanup: [`TestHosts`] deletes its namespaces (and with them the veth pair and every
//! iptables rule in them) when dropped, also when the test panics. A test process killed
//! outright cannot clean up, so every namespace is named after the pid that made it, and
//! [`remove_stale`] (run by `TestHosts::create` and by `cargo xtask netns` before and after
//! the tests) deletes those whose process is gone.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Every namespace this harness makes starts with this, then `<pid>n<k><a|b>`.
pub const PREFIX: &str = "xoscar";

/// The two hosts' addresses (each in its own namespace, so pairs never clash).
pub const HOST_A: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
/// See [`HOST_A`].
pub const HOST_B: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

/// Runs `program args`, panicking with its stderr when it fails.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("cannot run {program}: {error}"));
    assert!(
        output.status.success(),
        "{program} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// Whether this process can make namespaces: root, with `ip` and `iptables` on the path.
pub fn available() -> Result<(), String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(str::to_owned))
        .is_some_and(|line| line.split_whitespace().nth(2) == Some("0"));
    if !root {
        return Err("not root".to_owned());
    }
    for tool in ["ip", "iptables"] {
        let found = Command::new(tool).arg("-V").output().is_ok_and(|o| o.status.success());
        if !found {
            return Err(format!("{tool} is not installed (iproute2, iptables)"));
        }
    }
    Ok(())
}

/// Deletes every namespace of this harness whose process is gone; returns how many.
pub fn remove_stale() -> usize {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else { return 0 };
    let mut removed = 0;
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(rest) = name.strip_prefix(PREFIX) else { continue };
        let Some(pid) = rest.split('n').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists()
            && Command::new("ip")
                .args(["netns", "delete", name])
                .status()
                .is_ok_and(|s| s.success())
        {
            removed += 1;
        }
    }
    removed
}

/// Two namespaces, `a` at [`HOST_A`] and `b` at [`HOST_B`], joined by a veth pair.
#[derive(Debug)]
pub struct TestHosts {
    a: String,
    b: String,
}

/// One of the two hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// At [`HOST_A`].
    A,
    /// At [`HOST_B`].
    B,
}

impl TestHosts {
    /// Makes the namespaces and the link, loopback up in both. Panics (after cleaning up)
    /// when a step fails.
    pub fn create() -> TestHosts {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        remove_stale();
        let (pid, k) = (std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let hosts =
            TestHosts { a: format!("{PREFIX}{pid}n{k}a"), b: format!("{PREFIX}{pid}n{k}b") };
        let (va, vb) = (format!("xv{pid}n{k}a"), format!("xv{pid}n{k}b"));
        run("ip", &["netns", "add", &hosts.a]);
        run("ip", &["netns", "add", &hosts.b]);
        run("ip", &["link", "add", &va, "type", "veth", "peer", "name", &vb]);
        run("ip", &["link", "set", &va, "netns", &hosts.a]);
        run("ip", &["link", "set", &vb, "netns", &hosts.b]);
        for (ns, dev, ip) in [(&hosts.a, &va, HOST_A), (&hosts.b, &vb, HOST_B)] {
            run("ip", &["-n", ns, "addr", "add", &format!("{ip}/24"), "dev", dev]);
            run("ip", &["-n", ns, "link", "set", dev, "up"]);
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
        }
        hosts
    }

    /// The namespace's name, e.g. for `ip netns exec`.
    pub fn namespace(&self, host: Host) -> &str {
        match host {
            Host::A => &self.a,
            Host::B => &self.b,
        }
    }

    /// `program` to be run inside `host`'s namespace (`ip netns exec <ns> program`).
    pub fn command(&self, host: Host, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", self.namespace(host)]).arg(program);
        command
    }
}

/// Drops every packet in and out of namespace `namespace` except on loopback: the session
/// is lost, as behind a NAT that forgot it. Usable from inside any namespace.
pub fn drop_traffic(namespace: &str) {
    for rule in [["INPUT", "-i"], ["OUTPUT", "-o"]] {
        let args = ["netns", "exec", namespace, "iptables", "-A", rule[0], "!", rule[1], "lo"];
        run("ip", &[&args[..], &["-j", "DROP"]].concat());
    }
}

/// Removes what [`drop_traffic`] added.
pub fn restore_traffic(namespace: &str) {
    run("ip", &["netns", "exec", namespace, "iptables", "-F"]);
}

impl Drop for TestHosts {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            // Deleting a namespace also deletes its end of the veth pair and its rules.
            let _ = Command::new("ip").args(["netns", "delete", ns]).status();
        }
    }
}
