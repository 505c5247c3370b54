//! Network namespaces for integration tests: a real kernel peer in
//! milliseconds, cleaned up even when the test panics.
//!
//! * [`TestNs`]: `ip netns add` with a unique name (tag, pid, counter),
//!   loopback up, ICMP echo sockets allowed for every group *inside* it
//!   (passt uses ping sockets; the host's setting is never touched).
//!   Commands run in it with `exec`/`spawn`, Rust code with `run` (a thread
//!   that joins it, see `passt::sys::netns::run_in_netns`). Dropping it
//!   deletes the namespace and its `/etc/netns/NAME` directory.
//! * [`VethPair`]: a veth between two namespaces (or one and the test's
//!   own), both ends up, optional addresses (IPv6 without DAD).
//! * [`HostWithRouter`]: a "host" namespace whose default routes go through
//!   a "router" namespace, as the guest kit's `example-upstream-passt.sh`
//!   sets it up: host `veth0` 192.0.2.2/24 and 2001:db8::2/64, router
//!   `veth1` 192.0.2.1 and 2001:db8::1.
//!
//! Include it with `#[path = "common/netns.rs"] mod netns;` (or `pub mod
//! netns;` in a `tests/common/mod.rs`). Needs root (CAP_SYS_ADMIN and
//! CAP_NET_ADMIN) and iproute2; failures to set up panic with the command's
//! stderr.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io;
use std::ops::{Deref, DerefMut};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Makes names unique within one test binary (tests run in parallel).
static COUNTER: AtomicU32 = AtomicU32::new(0);

fn next_id() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Runs a command, panicking with its stderr if it fails; returns stdout.
pub fn run_ok<S: AsRef<OsStr>>(cmd: &str, args: &[S]) -> String {
    let out =
        Command::new(cmd).args(args).stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    check_output(cmd, args, out)
}

fn check_output<S: AsRef<OsStr>>(cmd: &str, args: &[S], out: Output) -> String {
    if !out.status.success() {
        let args: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect();
        panic!("`{cmd} {}` failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `cond` every 10 ms until it holds or `timeout` passes; returns
/// whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A named network namespace, deleted on drop.
#[derive(Debug)]
pub struct TestNs {
    /// Name as `ip netns` knows it.
    pub name: String,
    /// `/run/netns/NAME`, for `setns`/`run_in_netns` and `--netns`.
    pub path: PathBuf,
}

impl TestNs {
    /// Creates `prs-TAG-PID-N` with loopback up and
    /// `net.ipv4.ping_group_range = "0 2147483647"` inside it.
    ///
    /// # Panics
    ///
    /// If any step fails (not root, no iproute2...).
    pub fn new(tag: &str) -> TestNs {
        let tag: String = tag.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(20).collect();
        let name = format!("prs-{tag}-{}-{}", std::process::id(), next_id());
        run_ok("ip", &["netns", "add", &name]);
        // From here on, Drop cleans up if a later step panics.
        let ns = TestNs { path: PathBuf::from("/run/netns").join(&name), name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns.exec_ok("sysctl", &["-qw", "net.ipv4.ping_group_range=0 2147483647"]);
        ns
    }

    /// A `Command` that runs `cmd` inside the namespace (`ip netns exec`,
    /// which also bind-mounts `/etc/netns/NAME/*` over `/etc`).
    pub fn command(&self, cmd: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, cmd]);
        c
    }

    /// Runs `cmd args` inside the namespace and waits for it.
    pub fn exec<S: AsRef<OsStr>>(&self, cmd: &str, args: &[S]) -> Output {
        self.command(cmd)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run ip netns exec: {e}"))
    }

    /// [`exec`](Self::exec), panicking with stderr on failure; returns stdout.
    pub fn exec_ok<S: AsRef<OsStr>>(&self, cmd: &str, args: &[S]) -> String {
        let out = self.exec(cmd, args);
        check_output(cmd, args, out)
    }

    /// `ip -n NAME args...`, panicking on failure; returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run_ok("ip", &all)
    }

    /// `ip -n NAME args...` without the panic.
    pub fn ip_output(&self, args: &[&str]) -> Output {
        Command::new("ip").arg("-n").arg(&self.name).args(args).stdin(Stdio::null()).output().expect("cannot run ip")
    }

    /// Starts `cmd args` inside the namespace (stdin null, stdout and
    /// stderr inherited). Keep it in a [`ChildGuard`] to have it killed
    /// on drop.
    pub fn spawn<S: AsRef<OsStr>>(&self, cmd: &str, args: &[S]) -> Child {
        self.command(cmd)
            .args(args)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {cmd} in {}: {e}", self.name))
    }

    /// [`spawn`](Self::spawn) inside a guard that kills it on drop.
    pub fn spawn_guarded<S: AsRef<OsStr>>(&self, cmd: &str, args: &[S]) -> ChildGuard {
        ChildGuard(self.spawn(cmd, args))
    }

    /// Runs `f` in a thread inside the namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
        passt::sys::netns::run_in_netns(&self.path, f)
    }

    /// Writes `/etc/netns/NAME/resolv.conf`, which commands started with
    /// `exec`/`spawn` see as `/etc/resolv.conf`. Returns its path (code run
    /// with [`run`](Self::run) does not get the bind mount: pass the path).
    pub fn set_resolv_conf(&self, content: &str) -> PathBuf {
        let dir = self.etc_dir();
        std::fs::create_dir_all(&dir).expect("create /etc/netns/NAME");
        let p = dir.join("resolv.conf");
        std::fs::write(&p, content).expect("write resolv.conf");
        p
    }

    fn etc_dir(&self) -> PathBuf {
        Path::new("/etc/netns").join(&self.name)
    }

    /// The index of interface `ifname` in this namespace.
    pub fn ifindex(&self, ifname: &str) -> u32 {
        let out = self.ip(&["-o", "link", "show", "dev", ifname]);
        out.split(':').next().and_then(|n| n.trim().parse().ok()).unwrap_or_else(|| panic!("no index in {out:?}"))
    }

    /// This namespace's count of retransmitted TCP segments (`RetransSegs`).
    pub fn tcp_retransmissions(&self) -> u64 {
        let snmp = self.run(|| std::fs::read_to_string("/proc/thread-self/net/snmp")).expect("read snmp");
        let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
        let (names, values) = (tcp.next().expect("Tcp: names"), tcp.next().expect("Tcp: values"));
        let at = names.split_whitespace().position(|n| n == "RetransSegs").expect("RetransSegs");
        values.split_whitespace().nth(at).and_then(|v| v.parse().ok()).expect("RetransSegs value")
    }
}

impl Drop for TestNs {
    fn drop(&mut self) {
        let _ =
            Command::new("ip").args(["netns", "del", &self.name]).stdin(Stdio::null()).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(self.etc_dir());
    }
}

/// Starts bench/frame-pump (built at `pump`) in `ns` with `args`, waits
/// for the tap0 it creates and gives that MTU 65520 and `cidr`.
pub fn frame_pump_in(ns: &TestNs, pump: &Path, args: &[&str], cidr: &str) -> ChildGuard {
    let child = ns.spawn_guarded(pump.to_str().expect("UTF-8 path"), args);
    assert!(
        wait_until(Duration::from_secs(10), || ns.ip_output(&["link", "show", "tap0"]).status.success()),
        "the frame pump made no tap0 in {}",
        ns.name
    );
    ns.ip(&["link", "set", "tap0", "mtu", "65520", "up"]);
    ns.ip(&["addr", "add", cidr, "dev", "tap0", "nodad"]);
    child
}

/// A child process killed (and reaped) on drop.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl Deref for ChildGuard {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Where one end of a veth lives: the test's own namespace, or a TestNs.
#[derive(Debug, Clone, Copy)]
pub enum Side<'a> {
    /// The namespace the test runs in (names must not clash there: use
    /// [`VethPair::unique_name`]).
    Current,
    /// A test namespace.
    Ns(&'a TestNs),
}

impl Side<'_> {
    fn ns_name(&self) -> Option<String> {
        match self {
            Side::Current => None,
            Side::Ns(ns) => Some(ns.name.clone()),
        }
    }
}

/// A veth pair, both ends up; deleted on drop (deleting one end removes
/// both; a namespace deleted first takes its end with it).
#[derive(Debug)]
pub struct VethPair {
    /// Interface name of end A.
    pub a: String,
    /// Interface name of end B.
    pub b: String,
    a_ns: Option<String>,
    b_ns: Option<String>,
}

impl VethPair {
    /// A name unlikely to clash in the current namespace: `pv` + pid + N,
    /// at most 15 bytes.
    pub fn unique_name() -> String {
        let n = format!("pv{:x}x{:x}", std::process::id(), next_id());
        n.chars().take(15).collect()
    }

    /// Creates `a_name` in `a` and its peer `b_name` in `b`, brings both up.
    pub fn new(a: Side<'_>, a_name: &str, b: Side<'_>, b_name: &str) -> VethPair {
        let (a_ns, b_ns) = (a.ns_name(), b.ns_name());
        let mut args = vec!["link", "add", a_name];
        if let Some(ns) = &a_ns {
            args.extend(["netns", ns.as_str()]);
        }
        args.extend(["type", "veth", "peer", "name", b_name]);
        if let Some(ns) = &b_ns {
            args.extend(["netns", ns.as_str()]);
        }
        run_ok("ip", &args);
        let pair = VethPair { a: a_name.into(), b: b_name.into(), a_ns, b_ns };
        pair.ip_a(&["link", "set", &pair.a, "up"]);
        pair.ip_b(&["link", "set", &pair.b, "up"]);
        pair
    }

    /// Adds `cidr` (e.g. "192.0.2.2/24", "2001:db8::2/64") to end A; IPv6
    /// without DAD.
    pub fn addr_a(&self, cidr: &str) -> &Self {
        self.ip_a(&addr_args(&self.a, cidr));
        self
    }

    /// Adds `cidr` to end B; IPv6 without DAD.
    pub fn addr_b(&self, cidr: &str) -> &Self {
        self.ip_b(&addr_args(&self.b, cidr));
        self
    }

    /// `ip [-n NS_A] args...`
    pub fn ip_a(&self, args: &[&str]) -> String {
        ip_in(self.a_ns.as_deref(), args)
    }

    /// `ip [-n NS_B] args...`
    pub fn ip_b(&self, args: &[&str]) -> String {
        ip_in(self.b_ns.as_deref(), args)
    }
}

fn addr_args<'a>(dev: &'a str, cidr: &'a str) -> Vec<&'a str> {
    let mut v = vec!["addr", "add", cidr, "dev", dev];
    if cidr.contains(':') {
        v.push("nodad");
    }
    v
}

fn ip_in(ns: Option<&str>, args: &[&str]) -> String {
    let mut all = Vec::new();
    if let Some(ns) = ns {
        all.extend(["-n", ns]);
    }
    all.extend_from_slice(args);
    run_ok("ip", &all)
}

impl Drop for VethPair {
    fn drop(&mut self) {
        let mut c = Command::new("ip");
        if let Some(ns) = &self.a_ns {
            c.args(["-n", ns]);
        }
        let _ = c.args(["link", "del", &self.a]).stdin(Stdio::null()).stderr(Stdio::null()).status();
    }
}

/// A "host" namespace with default routes through a "router" namespace.
#[derive(Debug)]
pub struct HostWithRouter {
    /// The link between them (dropped first).
    pub veth: VethPair,
    /// Where the program under test runs: `veth0` with HOST4/HOST6.
    pub host: TestNs,
    /// The gateway: `veth1` with ROUTER4/ROUTER6, no default route.
    pub router: TestNs,
}

impl HostWithRouter {
    /// Host's IPv4 address.
    pub const HOST4: &'static str = "192.0.2.2";
    /// Router's (gateway's) IPv4 address.
    pub const ROUTER4: &'static str = "192.0.2.1";
    /// IPv4 prefix length of the link.
    pub const PREFIX4: u8 = 24;
    /// Host's IPv6 address.
    pub const HOST6: &'static str = "2001:db8::2";
    /// Router's (gateway's) IPv6 address.
    pub const ROUTER6: &'static str = "2001:db8::1";
    /// IPv6 prefix length of the link.
    pub const PREFIX6: u8 = 64;

    /// Both namespaces (named after `tag`), the veth, addresses (IPv6
    /// without DAD) and the host's default routes.
    pub fn new(tag: &str) -> HostWithRouter {
        let host = TestNs::new(&format!("{tag}-host"));
        let router = TestNs::new(&format!("{tag}-rtr"));
        let veth = VethPair::new(Side::Ns(&host), "veth0", Side::Ns(&router), "veth1");
        veth.addr_a(&format!("{}/{}", Self::HOST4, Self::PREFIX4));
        veth.addr_a(&format!("{}/{}", Self::HOST6, Self::PREFIX6));
        veth.addr_b(&format!("{}/{}", Self::ROUTER4, Self::PREFIX4));
        veth.addr_b(&format!("{}/{}", Self::ROUTER6, Self::PREFIX6));
        host.ip(&["route", "add", "default", "via", Self::ROUTER4]);
        host.ip(&["-6", "route", "add", "default", "via", Self::ROUTER6]);
        HostWithRouter { veth, host, router }
    }
}
