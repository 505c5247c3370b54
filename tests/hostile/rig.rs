//! A tap-attached instance for the flood and fault tests: host and router
//! namespaces (`HostWithRouter`), a guest namespace whose kernel is the
//! guest, the instance driven in a thread of the host namespace with its
//! log lines captured and its counters published, and a raw (AF_PACKET)
//! sender on the guest's tap for frames the guest's kernel would never
//! send by itself.

#![allow(dead_code)]

use crate::common::netns::{wait_until, HostWithRouter, TestNs};
use passt::engine::Instance;
use passt::stats::Stats;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub const GW4: &str = "192.0.2.1";
pub const GUEST4: &str = "192.0.2.2";
pub const GW6: &str = "2001:db8::1";

/// Log lines of the instance: (syslog level, text).
pub type Lines = Arc<Mutex<Vec<(i32, String)>>>;

/// Runs an instance in a thread inside a namespace, as a host program
/// would, keeping its log lines and a copy of its counters.
pub struct LogDriver {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), String>>>,
    pub lines: Lines,
    pub stats: Arc<Mutex<Stats>>,
    /// Times poll() found work for the instance.
    pub wakeups: Arc<std::sync::atomic::AtomicU64>,
}

impl LogDriver {
    pub fn start_in(netns: &std::path::Path, opts: &[&str]) -> Result<LogDriver, String> {
        let config = crate::common::driver::Driver::config(opts);
        let (tx, rx) = std::sync::mpsc::channel();
        let path = netns.to_path_buf();
        let stop = Arc::new(AtomicBool::new(false));
        let lines: Lines = Default::default();
        let stats: Arc<Mutex<Stats>> = Default::default();
        let wakeups: Arc<std::sync::atomic::AtomicU64> = Default::default();
        let (flag, sink_lines, shared, woken) = (stop.clone(), lines.clone(), stats.clone(), wakeups.clone());
        let thread = std::thread::spawn(move || {
            if let Err(e) = passt::sys::netns::enter_netns(&path) {
                let _ = tx.send(Err(e.to_string()));
                return Ok(());
            }
            let echo = std::env::var("PASST_TEST_ECHO").is_ok();
            let level = std::env::var("PASST_TEST_LOG").ok().and_then(|l| l.parse().ok()).unwrap_or(6);
            let func: passt::log::SinkFn = Arc::new(move |level, text: &str| {
                if echo {
                    eprintln!("passt[{level}]: {text}");
                }
                sink_lines.lock().unwrap().push((level, text.to_string()));
            });
            let _log = passt::log::SinkGuard::enter(passt::log::Sink { func: Some(func), max_level: level });
            let mut instance = match Instance::new(&config) {
                Ok(i) => i,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return Ok(());
                }
            };
            let _ = tx.send(Ok(()));
            let mut timeout = 0i32;
            while !flag.load(Ordering::Relaxed) {
                let mut pfd = libc::pollfd { fd: instance.fd(), events: libc::POLLIN, revents: 0 };
                let t = if !(0..=50).contains(&timeout) { 50 } else { timeout };
                // SAFETY: pfd is a valid pollfd array of length 1.
                if unsafe { libc::poll(&mut pfd, 1, t) } > 0 {
                    woken.fetch_add(1, Ordering::Relaxed);
                }
                let r = instance.process(crate::common::driver::now());
                *shared.lock().unwrap() = instance.stats().clone();
                match r {
                    Ok(Some(ms)) => timeout = ms.min(i32::MAX as u64) as i32,
                    Ok(None) => timeout = -1,
                    Err(e) => {
                        eprintln!("the instance's loop ended: {e}");
                        return Err(e.to_string());
                    }
                }
            }
            Ok(())
        });
        match rx.recv() {
            Ok(Ok(())) => Ok(LogDriver { stop, thread: Some(thread), lines, stats, wakeups }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err("driver thread died".into()),
        }
    }

    /// Lines at `level` or more severe (lower) containing `needle`.
    pub fn count(&self, max_level: i32, needle: &str) -> usize {
        self.lines.lock().unwrap().iter().filter(|(l, t)| *l <= max_level && t.contains(needle)).count()
    }

    /// Warnings and errors so far.
    pub fn warnings(&self) -> Vec<String> {
        self.lines.lock().unwrap().iter().filter(|(l, _)| *l <= 4).map(|(_, t)| t.clone()).collect()
    }

    pub fn stats(&self) -> Stats {
        self.stats.lock().unwrap().clone()
    }

    /// Stops the loop; how it ended.
    pub fn stop(mut self) -> Result<(), String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().map(|t| t.join().unwrap_or(Err("driver panicked".into()))).unwrap_or(Ok(()))
    }

    /// Whether the loop ended by itself (an error), without stopping it.
    pub fn finished(&self) -> bool {
        self.thread.as_ref().map_or(true, |t| t.is_finished())
    }
}

impl Drop for LogDriver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub struct Setup {
    pub driver: LogDriver,
    pub guest: TestNs,
    pub net: HostWithRouter,
}

/// Host and router namespaces, a guest namespace configured by the
/// instance (`config-net`) on tap0, the instance in the host namespace.
pub fn setup(tag: &str, extra: &[&str]) -> Setup {
    let net = HostWithRouter::new(tag);
    let guest = TestNs::new(&format!("{tag}-g"));
    let netns = format!("netns={}", guest.path.display());
    let mut opts = vec![netns.as_str(), "ns-ifname=tap0", "config-net"];
    opts.extend_from_slice(extra);
    let driver = LogDriver::start_in(&net.host.path, &opts).expect("instance starts");
    let s = Setup { driver, guest, net };
    let probe: SocketAddr = format!("[{GW6}]:1").parse().unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || {
            matches!(s.guest.run(move || TcpStream::connect_timeout(&probe, Duration::from_millis(500))),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused)
        }),
        "IPv6 path ready"
    );
    s
}

impl Setup {
    pub fn in_guest<T: Send>(&self, f: impl FnOnce() -> io::Result<T> + Send) -> T {
        self.guest.run(f).expect("in the guest namespace")
    }

    pub fn in_host<T: Send>(&self, f: impl FnOnce() -> io::Result<T> + Send) -> T {
        self.net.host.run(f).expect("in the host namespace")
    }

    /// The guest's tap MAC address.
    pub fn guest_mac(&self) -> [u8; 6] {
        let out = self.guest.ip(&["-o", "link", "show", "dev", "tap0"]);
        let mac = out.split("link/ether ").nth(1).and_then(|r| r.split_whitespace().next()).expect("tap0 MAC");
        passt::config::parse_mac(mac).expect("a MAC")
    }

    /// A raw sender on the guest's tap0.
    pub fn raw(&self) -> Raw {
        let idx = self.guest.ifindex("tap0");
        self.in_guest(move || Raw::open(idx as i32))
    }
}

/// An AF_PACKET socket bound to one interface: sends whole frames.
pub struct Raw {
    fd: OwnedFd,
    ifindex: i32,
}

impl Raw {
    pub fn open(ifindex: i32) -> io::Result<Raw> {
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is a fresh socket we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Raw { fd, ifindex })
    }

    /// Sends one frame; ENOBUFS (the tap's queue is full) is retried
    /// after a short pause, a few times.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = self.ifindex;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        for _ in 0..100 {
            // SAFETY: frame and sll are valid for the lengths given.
            let n = unsafe {
                libc::sendto(
                    self.fd.as_raw_fd(),
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            if n >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::ENOBUFS) && e.kind() != io::ErrorKind::WouldBlock {
                return Err(e);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        Err(io::Error::from_raw_os_error(libc::ENOBUFS))
    }
}

/// A deterministic byte stream and an order-sensitive checksum (FNV-1a).
pub fn fnv(mut h: u64, data: &[u8]) -> u64 {
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}
pub const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

/// Fills `buf` with bytes that depend on their offset in the stream.
pub fn fill(off: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let p = off + i as u64;
        *b = (p as u8) ^ ((p >> 8) as u8).wrapping_mul(31) ^ ((p >> 16) as u8).wrapping_mul(7);
    }
}
