//! The engine: one instance's epoll sets, timers and batching; the loop
//! that `passt_process` runs.
//!
//! Two epoll sets. The *main* set is the fd the host polls (`passt_fd`):
//! it holds the guest attachment's fds and, nested, the *host* set with
//! every host socket of every flow. While the queue of frames to the guest
//! is full, the host set is taken out of the main set, so that readable
//! host sockets neither wake the host nor get read: their data waits in
//! the kernel, which is the backpressure we want (nothing read that the
//! guest cannot take). When the queue drains, the host set goes back and
//! flows are told to resume.
//!
//! `process(now)` handles one round of ready events (one `epoll_wait`,
//! each source read up to a batch; the host sockets are polled once more
//! after guest frames that started a `connect()`, which to the host's
//! loopback has finished already), runs due timers, flushes the queue and
//! returns the time to the next deadline. It never blocks and reads no
//! clock. One round, not "until nothing is ready": the work per call stays
//! small and bounded, so a flood cannot hold the host's thread, and a host
//! loop that yields between calls lets the consumers of what we just
//! delivered (an application's socket, the guest) run before we deliver
//! more; what is still ready keeps `passt_fd` readable for the next call.
//! (Under a UDP flood, returning after every round rather than after 16
//! moved the received rate from ~1.4 to ~2 Gbit/s here: fewer datagrams
//! forwarded only to be dropped at a starved receiver.)
//!
//! The in-process attachment (`frames`) has no fd to wait on for
//! writability: when the host's callback takes fewer frames than offered,
//! the rest stay queued (and, once the queue is full, host sockets are
//! paused as above). They are offered again when the host signals the
//! *wake* eventfd (also in the main set) with [`Instance::frame_output_ready`],
//! on every later call, and, for hosts that never signal, by `process`
//! asking to be called again within [`FRAMES_RETRY`].
//!
//! Run-time control: [`Instance::forward_add`] / [`Instance::forward_remove`]
//! open and close forwarded-port sockets between two calls.

mod dispatch;
pub mod event;
pub mod setup;

use crate::backend::stream::{Conn, Listener, ReadOutcome};
use crate::backend::tap::Tap;
use crate::backend::{Flush, Frames};
use crate::config::Config;
use crate::ffi::passt_error;
use crate::flow::icmp::Icmp;
use crate::flow::tcp::Tcp;
use crate::flow::udp::Udp;
use crate::flow::{FlowBudget, FlowCtx};
use crate::guestnet::GuestNet;
use crate::pcap::Pcap;
use crate::stats::{FlowCount, Snapshot, Stats};
use crate::sys::epoll::{self, Epoll};
use crate::sys::eventfd::EventFd;
use crate::time::Instant;
use crate::token::{Kind, Token};
use crate::tx::{TxQueue, MAX_FRAME};
use std::fmt;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

pub use crate::backend::FrameOutput;
use dispatch::Services;
pub use event::Event;
use event::Events;

/// Events fetched per `epoll_wait`.
const EVENT_BATCH: usize = 256;
/// Upper bound of the queue of frames to the guest.
const TX_LIMIT: usize = 4 << 20;
/// With frames held back by the in-process host, and the host not using
/// [`Instance::frame_output_ready`], `process` asks to be called again
/// within this.
pub const FRAMES_RETRY: Duration = Duration::from_millis(1);

/// Which forwarded ports a run-time change is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// "tcp" or "udp" (any case).
    pub fn parse(s: &str) -> Option<Proto> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "TCP",
            Proto::Udp => "UDP",
        }
    }
}

/// Why an instance cannot go on, or why a call was refused.
#[derive(Debug)]
pub enum RunError {
    /// A system call failed.
    System(String),
    /// The call does not apply to this attachment.
    Unsupported(&'static str),
    /// `one-off`: the guest went away.
    GuestGone,
    /// A bad argument (a port spec...): the message names it.
    Invalid(String),
}

impl RunError {
    pub fn code(&self) -> passt_error {
        match self {
            RunError::System(_) => passt_error::System,
            RunError::Unsupported(_) => passt_error::Unsupported,
            RunError::GuestGone => passt_error::GuestGone,
            RunError::Invalid(_) => passt_error::Invalid,
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::System(s) => f.write_str(s),
            RunError::Unsupported(s) => write!(f, "not supported: {s}"),
            RunError::GuestGone => f.write_str("the guest disconnected (one-off)"),
            RunError::Invalid(s) => f.write_str(s),
        }
    }
}

/// The guest side.
enum Guest {
    /// Listening on a path; `conn` is the current guest, if any.
    Socket { listener: Listener, conn: Option<Conn> },
    /// A connected fd handed over by the host; `None` once it closed.
    Fd(Option<Conn>),
    Tap(Tap),
    Frames(Frames),
}

/// The flow tables, one per protocol.
pub(crate) struct Flows {
    pub(crate) icmp: Icmp,
    pub(crate) tcp: Tcp,
    pub(crate) udp: Udp,
}

/// Everything but the guest side, so that frames read from the guest side
/// can be handed to it while the guest side is borrowed.
pub(crate) struct Core {
    pub(crate) host: Epoll,
    pub(crate) net: GuestNet,
    pub(crate) tx: TxQueue,
    pub(crate) stats: Stats,
    pub(crate) budget: FlowBudget,
    pub(crate) flows: Flows,
    pub(crate) services: Services,
    pub(crate) pcap: Option<Pcap>,
    pub(crate) no_icmp: bool,
    pub(crate) no_tcp: bool,
    pub(crate) no_udp: bool,
    pub(crate) now: Instant,
    /// Events for the host (recorded only while it listens).
    pub(crate) events: Events,
}

impl Core {
    /// Splits out what a flow handler gets, and the tables.
    pub(crate) fn flow_ctx(&mut self) -> (FlowCtx<'_>, &mut Flows) {
        (
            FlowCtx {
                now: self.now,
                host: &self.host,
                tx: &mut self.tx,
                net: &self.net,
                stats: &mut self.stats,
                budget: &mut self.budget,
            },
            &mut self.flows,
        )
    }
}

pub struct Instance {
    main: Epoll,
    guest: Guest,
    core: Core,
    /// Whether the host set is in the main set (false while the queue is full).
    host_active: bool,
    /// Whether the guest fd is watched for writability.
    want_out: bool,
    one_off: bool,
    /// Set once a one-off guest went away: every later call says so.
    gone: bool,
    events: Vec<epoll::Event>,
    /// Signalled by the host when it can take frames again (`frames`).
    wake: Arc<Wake>,
    /// Test facility: the next `process` panics (see [`Instance::debug_inject_panic`]).
    panic_armed: bool,
    /// Events of the host set (see `host_events`).
    host_events: Vec<epoll::Event>,
}

/// The wake eventfd, and whether the host ever used it (then it will
/// again, and `process` need not poll on its behalf).
#[derive(Debug)]
struct Wake {
    fd: EventFd,
    used: std::sync::atomic::AtomicBool,
}

impl Wake {
    fn signal(&self) {
        self.used.store(true, std::sync::atomic::Ordering::Relaxed);
        self.fd.signal();
    }

    fn used(&self) -> bool {
        self.used.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A handle that tells an instance, from any thread, that the in-process
/// host can take frames again (see [`Instance::frame_output_ready`]).
#[derive(Clone, Debug)]
pub struct Waker(Arc<Wake>);

impl Waker {
    /// Makes the instance's fd readable; its next `process` offers the
    /// held-back frames again. Safe from any thread, at any time.
    pub fn wake(&self) {
        self.0.signal();
    }
}

fn sys_err(what: &str, e: std::io::Error) -> String {
    format!("{what}: {e}")
}

impl Instance {
    /// Validates `config`, discovers the host's network, opens the guest
    /// attachment. Errors are readable sentences naming the bad value.
    pub fn new(config: &Config) -> Result<Instance, String> {
        config.validate().map_err(|e| e.0)?;
        let host_net = crate::hostnet::discover(config.interface.as_deref())
            .map_err(|e| sys_err("cannot read the host's network configuration", e))?;
        let resolv = crate::hostnet::read_resolv_conf(std::path::Path::new("/etc/resolv.conf"));
        let net = setup::guest_net(config, &host_net, &resolv)?;
        let opened = setup::open_attachment(config, &net)?;

        let main = Epoll::new().map_err(|e| sys_err("epoll", e))?;
        let host = Epoll::new().map_err(|e| sys_err("epoll", e))?;
        main.add(host_fd(&host), epoll::IN, Token::new(Kind::HostSet, 0).to_u64())
            .map_err(|e| sys_err("epoll", e))?;
        let wake = Arc::new(Wake { fd: EventFd::new().map_err(|e| sys_err("eventfd", e))?, used: false.into() });
        main.add(wake.fd.as_fd(), epoll::IN, Token::new(Kind::Wake, 0).to_u64()).map_err(|e| sys_err("epoll", e))?;
        let mut udp_gso = false;
        let guest = match opened {
            setup::Opened::Listener(listener) => {
                main.add(listener.fd.as_fd(), epoll::IN, Token::new(Kind::BackendListen, 0).to_u64())
                    .map_err(|e| sys_err("epoll", e))?;
                log::info!("listening for a guest on {}", listener.path.display());
                Guest::Socket { listener, conn: None }
            }
            setup::Opened::Conn(conn) => {
                main.add(conn.fd.as_fd(), epoll::IN | epoll::RDHUP, Token::new(Kind::Backend, 0).to_u64())
                    .map_err(|e| sys_err("epoll", e))?;
                Guest::Fd(Some(conn))
            }
            setup::Opened::Tap(fd, vnet, uso) => {
                main.add(fd.as_fd(), epoll::IN, Token::new(Kind::Backend, 0).to_u64()).map_err(|e| sys_err("epoll", e))?;
                udp_gso = uso;
                Guest::Tap(Tap::new(fd, vnet))
            }
            setup::Opened::Frames => Guest::Frames(Frames::default()),
        };
        let pcap = match &config.pcap {
            Some(path) => Some(Pcap::create(path).map_err(|e| format!("cannot create pcap file {}: {e}", path.display()))?),
            None => None,
        };
        let services = Services::new(config, &net);
        log_addresses(&net);
        let mut inst = Instance {
            main,
            guest,
            core: Core {
                host,
                net,
                tx: TxQueue::new(TX_LIMIT),
                stats: Stats::default(),
                budget: FlowBudget::new(config.max_flows),
                flows: Flows { icmp: Icmp::new(), tcp: Tcp::new(config.max_flows), udp: Udp::new(config.max_flows) },
                services,
                pcap,
                no_icmp: config.no_icmp,
                no_tcp: config.no_tcp,
                no_udp: config.no_udp,
                now: Instant::default(),
                events: Events::default(),
            },
            host_active: true,
            want_out: false,
            one_off: config.one_off,
            gone: false,
            events: vec![epoll::empty_event(); EVENT_BATCH],
            wake,
            panic_armed: false,
            host_events: vec![epoll::empty_event(); EVENT_BATCH],
        };
        if let Guest::Tap(t) = &inst.guest {
            inst.core.tx.set_offload(t.offloads());
            inst.core.tx.set_udp_gso(udp_gso);
        }
        inst.core.listen(config)?;
        if matches!(inst.guest, Guest::Tap(_) | Guest::Fd(_)) {
            inst.guest_attached();
        }
        Ok(inst)
    }

    /// The fd the host polls.
    pub fn fd(&self) -> i32 {
        self.main.raw()
    }

    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }

    /// The counters plus what the flow tables say now.
    pub fn snapshot(&self) -> Snapshot {
        let f = &self.core.flows;
        let count = |current: usize, peak: usize| FlowCount { current: current as u64, peak: peak as u64 };
        Snapshot {
            counters: self.core.stats.clone(),
            tcp: count(f.tcp.len(), f.tcp.peak()),
            udp: count(f.udp.len(), f.udp.peak()),
            icmp: count(f.icmp.len(), f.icmp.peak()),
            tcp_forwards: f.tcp.listening_ports().count() as u64,
            udp_forwards: f.udp.listener_count() as u64,
        }
    }

    /// Starts or stops recording [`Event`]s (stopping drops those pending).
    /// Starting while a guest is attached records `GuestConnected` first:
    /// a tap or an fd is attached inside `new`, before anyone could listen.
    pub fn record_events(&mut self, on: bool) {
        let was = self.core.events.enabled;
        self.core.events.enabled = on;
        if !on {
            self.core.events.take();
        } else if !was && self.guest_present() {
            self.core.events.push(Event::GuestConnected);
        }
    }

    /// Whether a guest is attached right now.
    fn guest_present(&self) -> bool {
        match &self.guest {
            Guest::Socket { conn, .. } | Guest::Fd(conn) => conn.is_some(),
            Guest::Tap(_) => true,
            Guest::Frames(f) => f.output.is_some(),
        }
    }

    /// The events recorded since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<Event> {
        self.core.events.take()
    }

    /// Test facility: makes the next [`Instance::process`] panic inside
    /// the engine, so that hosts (and our C boundary) can test how they
    /// handle an internal error. Never used by the library itself.
    pub fn debug_inject_panic(&mut self) {
        self.panic_armed = true;
    }

    /// Forwards one more `-t`/`-u` spec (passt's syntax) at run time.
    ///
    /// # Errors
    /// [`RunError::Invalid`] naming the spec: it does not parse, the
    /// protocol is switched off, or a port is forwarded already or bound
    /// by another process (then nothing of the spec stays open).
    pub fn forward_add(&mut self, proto: Proto, spec: &str) -> Result<usize, RunError> {
        let parsed = self.parse_forward(proto, spec)?;
        let (mut ctx, flows) = self.core.flow_ctx();
        let r = match proto {
            Proto::Tcp => flows.tcp.forward_add(&mut ctx, &parsed),
            Proto::Udp => flows.udp.forward_add(&mut ctx, &parsed),
        };
        match r {
            Ok(n) => {
                log::info!("{}: now forwarding '{spec}' ({n} sockets)", proto.name());
                Ok(n)
            }
            Err(e) => Err(RunError::Invalid(format!("{} forward '{spec}': {e}", proto.name()))),
        }
    }

    /// Stops forwarding the ports `spec` names (the same bind address as
    /// when added; `all` for every port). TCP connections already accepted
    /// carry on; UDP flows that came in through those ports end.
    ///
    /// # Errors
    /// [`RunError::Invalid`] naming the spec when it does not parse or
    /// matches no forwarded port.
    pub fn forward_remove(&mut self, proto: Proto, spec: &str) -> Result<usize, RunError> {
        let parsed = self.parse_forward(proto, spec)?;
        let (mut ctx, flows) = self.core.flow_ctx();
        let n = match proto {
            Proto::Tcp => flows.tcp.forward_remove(&parsed),
            Proto::Udp => flows.udp.forward_remove(&mut ctx, &parsed),
        };
        if n == 0 {
            return Err(RunError::Invalid(format!("{} forward '{spec}': no forwarded port matches", proto.name())));
        }
        log::info!("{}: no longer forwarding '{spec}' ({n} sockets closed)", proto.name());
        Ok(n)
    }

    fn parse_forward(&self, proto: Proto, spec: &str) -> Result<crate::fwd::PortSpec, RunError> {
        let off = match proto {
            Proto::Tcp => self.core.no_tcp,
            Proto::Udp => self.core.no_udp,
        };
        if off {
            return Err(RunError::Invalid(format!("{} forward '{spec}': {} is disabled", proto.name(), proto.name())));
        }
        let parsed = crate::fwd::PortSpec::parse(spec)
            .map_err(|e| RunError::Invalid(format!("{} forward '{spec}': {e}", proto.name())))?;
        if parsed.none {
            return Err(RunError::Invalid(format!("{} forward '{spec}': 'none' names no port", proto.name())));
        }
        Ok(parsed)
    }

    /// The in-process host can take frames again: the instance's fd becomes
    /// readable and the next `process` offers the held-back frames. From
    /// the driving thread; other threads use a [`Waker`].
    pub fn frame_output_ready(&mut self) {
        self.wake.signal();
    }

    /// A handle for [`Instance::frame_output_ready`] usable from any thread.
    pub fn waker(&self) -> Waker {
        Waker(self.wake.clone())
    }
    pub fn guest_net(&self) -> &GuestNet {
        &self.core.net
    }

    /// See the module comment. `Ok(None)`: no deadline.
    pub fn process(&mut self, now: Instant) -> Result<Option<u64>, RunError> {
        if self.gone {
            return Err(RunError::GuestGone);
        }
        if std::mem::take(&mut self.panic_armed) {
            panic!("debug_inject_panic: the panic a test asked for");
        }
        self.core.now = now;
        let n = self.main.wait(&mut self.events, 0).map_err(|e| RunError::System(sys_err("epoll_wait", e)))?;
        for i in 0..n {
            let ev = self.events[i];
            let (data, bits) = (ev.u64, ev.events);
            match Token::from_u64(data).map(|t| t.kind) {
                Some(Kind::BackendListen) => self.accept_guest(),
                Some(Kind::Backend) => {
                    if bits & epoll::OUT != 0 {
                        self.flush_guest();
                    }
                    if bits & (epoll::IN | epoll::HUP | epoll::ERR | epoll::RDHUP) != 0 {
                        self.read_guest();
                    }
                }
                Some(Kind::HostSet) => self.host_events(),
                Some(Kind::Wake) => {
                    self.wake.fd.clear();
                    self.flush_guest();
                    if self.guest_has_frame() {
                        self.read_guest();
                    }
                }
                _ => {}
            }
            if self.gone {
                return Err(RunError::GuestGone);
            }
        }
        // A connect() to the host's loopback has finished already: answer
        // the guest's SYN now, not in the next wake-up.
        if self.core.flows.tcp.take_connect_started() && self.host_active {
            self.host_events();
        }
        self.run_timers();
        self.flush_guest();
        if let Some(p) = self.core.pcap.as_mut() {
            if let Err(e) = p.flush() {
                log::warn!("pcap capture stopped: {e}");
                self.core.pcap = None;
            }
        }
        // A write to the guest can find it gone (a guest that hung up
        // before we accepted it fails its greeting): its fd is closed, so
        // no event would bring the caller back to hear it later.
        if self.gone {
            return Err(RunError::GuestGone);
        }
        let mut deadline = self.deadline();
        // The in-process host could not take every frame: try again soon,
        // unless it tells us when it can.
        if matches!(self.guest, Guest::Frames(_)) && !self.core.tx.is_empty() && !self.wake.used() {
            deadline = Some(now + FRAMES_RETRY);
        }
        Ok(deadline.map(|d| now.millis_until(d)))
    }

    /// Sets the in-process frame output.
    pub fn set_frame_output(&mut self, out: FrameOutput) -> Result<(), RunError> {
        match &mut self.guest {
            Guest::Frames(f) => {
                f.output = Some(out);
                self.guest_attached();
                Ok(())
            }
            _ => Err(RunError::Unsupported("frame output needs the 'frames' attachment")),
        }
    }

    /// One frame from the in-process guest, handled at once.
    pub fn frame_input(&mut self, frame: &[u8], now: Instant) -> Result<(), RunError> {
        self.frames_input(std::iter::once(frame), now).map(|_| ())
    }

    /// A batch of frames from the in-process guest, handled as one batch
    /// (acknowledgements coalesced, datagrams sent together), then the
    /// replies flushed. Returns how many frames were taken: all of them
    /// (malformed ones are dropped and counted).
    pub fn frames_input<'a>(&mut self, frames: impl IntoIterator<Item = &'a [u8]>, now: Instant) -> Result<usize, RunError> {
        if !matches!(self.guest, Guest::Frames(_)) {
            return Err(RunError::Unsupported("frame input needs the 'frames' attachment"));
        }
        self.core.now = now;
        let mut n = 0;
        for frame in frames {
            self.core.handle_frame(frame);
            n += 1;
        }
        self.core.after_guest_batch();
        self.flush_guest();
        Ok(n)
    }

    fn accept_guest(&mut self) {
        let Guest::Socket { listener, conn } = &mut self.guest else { return };
        let fd = match crate::sys::net::accept(listener.fd.as_fd()) {
            Ok((fd, _)) => fd,
            Err(e) => {
                log::debug!("accept on the guest socket: {e}");
                return;
            }
        };
        if conn.is_some() {
            // One guest at a time, as passt: the newcomer is closed.
            log::warn!("a second guest tried to connect while one is attached: refused");
            return;
        }
        if let Err(e) = self.main.add(fd.as_fd(), epoll::IN | epoll::RDHUP, Token::new(Kind::Backend, 0).to_u64()) {
            log::warn!("cannot watch the guest connection: {e}");
            return;
        }
        *conn = Some(Conn::new(fd));
        log::info!("guest connected");
        self.want_out = false;
        self.guest_attached();
    }

    /// A guest is there: count it, tell the host, greet it (router
    /// advertisement).
    fn guest_attached(&mut self) {
        self.core.stats.guest_connects += 1;
        self.core.events.push(Event::GuestConnected);
        self.core.services.guest_attached(self.core.now);
    }

    fn read_guest(&mut self) {
        let core = &mut self.core;
        let closed = match &mut self.guest {
            Guest::Socket { conn: Some(c), .. } | Guest::Fd(Some(c)) => {
                let outcome = c.read_frames(|f| {
                    core.handle_frame(f);
                    !core.host_burst_done()
                });
                if c.has_frame() {
                    // Ended early with frames left: come back for them even
                    // if the socket stays quiet.
                    self.wake.fd.signal();
                }
                match outcome {
                    ReadOutcome::Open => false,
                    ReadOutcome::Closed => true,
                    ReadOutcome::BadFraming => {
                        core.stats.drop(crate::stats::Drop::BadLength);
                        true
                    }
                }
            }
            Guest::Tap(t) => match t.read_frames(|f| {
                core.handle_frame_from(f.frame, f.meta);
                !core.host_burst_done()
            }) {
                Ok(()) => false,
                Err(e) => {
                    log::warn!("tap device: {e}");
                    false
                }
            },
            _ => false,
        };
        // A guest waits for the SYN-ACK the batch queued: it goes out
        // before the work the batch owes other flows (a shutdown(), its ACK).
        if core.flows.tcp.take_answered_early() {
            self.flush_guest();
        }
        self.core.after_guest_batch();
        if closed {
            self.guest_gone();
        }
    }

    /// Whether the stream backend holds a whole frame left by a batch that
    /// ended early.
    fn guest_has_frame(&self) -> bool {
        matches!(&self.guest, Guest::Socket { conn: Some(c), .. } | Guest::Fd(Some(c)) if c.has_frame())
    }

    /// The guest disconnected: forget it, close its flows, and wait for the
    /// next one (or stop, with `one-off`).
    fn guest_gone(&mut self) {
        match &mut self.guest {
            Guest::Socket { conn, .. } => *conn = None,
            Guest::Fd(conn) => *conn = None,
            _ => return,
        }
        log::info!("guest disconnected");
        self.core.events.push(Event::GuestDisconnected);
        self.want_out = false;
        self.core.tx.clear();
        self.core.tx.shrink(0);
        self.core.reset_flows();
        self.core.net.guest_mac = None;
        if !self.host_active {
            self.resume_host();
        }
        if self.one_off || matches!(self.guest, Guest::Fd(_)) {
            self.gone = true;
        }
    }

    /// Events on host sockets: dispatched to the flow tables.
    fn host_events(&mut self) {
        // What this poll finds includes any connect() started before it.
        self.core.flows.tcp.take_connect_started();
        // A buffer kept from call to call: zeroing 3 KiB on every wake-up
        // was a third of the instructions of a 1-byte round trip.
        let mut events = std::mem::take(&mut self.host_events);
        let n = match self.core.host.wait(&mut events, 0) {
            Ok(n) => n,
            Err(e) => {
                log::warn!("epoll_wait on host sockets: {e}");
                self.host_events = events;
                return;
            }
        };
        for ev in &events[..n] {
            let (data, bits) = (ev.u64, ev.events);
            let Some(token) = Token::from_u64(data) else { continue };
            self.core.host_event(token, bits);
            if self.core.tx.room() < MAX_FRAME {
                self.flush_guest();
            }
        }
        self.host_events = events;
    }

    /// Sends queued frames; pauses or resumes host sockets accordingly.
    fn flush_guest(&mut self) {
        let core = &mut self.core;
        for frame in core.tx.take_new() {
            if let Some(p) = core.pcap.as_mut() {
                if p.record(core.now, frame).is_err() {
                    log::warn!("pcap capture stopped: cannot write the file");
                    core.pcap = None;
                }
            }
        }
        let (frames_before, bytes_before) = (core.tx.len(), core.tx.queued_bytes());
        let result = match &mut self.guest {
            Guest::Socket { conn: Some(c), .. } | Guest::Fd(Some(c)) => c.flush(&mut self.core.tx),
            Guest::Tap(t) => t.flush(&mut self.core.tx),
            Guest::Frames(f) => Ok(f.flush(&mut self.core.tx)),
            _ => {
                self.core.tx.clear();
                Ok(Flush::NoGuest)
            }
        };
        // What left the queue reached the guest side (a frame partly
        // written to a stream counts once it is complete), unless there
        // was no guest to take it.
        if !matches!(result, Ok(Flush::NoGuest)) {
            let tx = &self.core.tx;
            self.core.stats.frames_out += frames_before.saturating_sub(tx.len()) as u64;
            self.core.stats.bytes_out += bytes_before.saturating_sub(tx.queued_bytes()) as u64;
        }
        match result {
            Ok(Flush::Blocked) => {
                self.set_want_out(true);
                if self.core.tx.room() < MAX_FRAME && self.host_active {
                    self.pause_host();
                }
            }
            Ok(_) => {
                self.set_want_out(false);
                if !self.host_active {
                    self.resume_host();
                }
            }
            Err(e) => {
                log::info!("writing to the guest: {e}");
                self.guest_gone();
            }
        }
    }

    fn guest_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        match &self.guest {
            Guest::Socket { conn: Some(c), .. } | Guest::Fd(Some(c)) => Some(c.fd.as_fd()),
            Guest::Tap(t) => Some(t.fd.as_fd()),
            _ => None,
        }
    }

    fn set_want_out(&mut self, want: bool) {
        if want == self.want_out {
            return;
        }
        let Some(fd) = self.guest_fd() else { return };
        let bits = if want { epoll::IN | epoll::RDHUP | epoll::OUT } else { epoll::IN | epoll::RDHUP };
        if self.main.modify(fd, bits, Token::new(Kind::Backend, 0).to_u64()).is_ok() {
            self.want_out = want;
        }
    }

    fn pause_host(&mut self) {
        if self.main.delete(host_fd(&self.core.host)).is_ok() {
            self.host_active = false;
        }
    }

    fn resume_host(&mut self) {
        let token = Token::new(Kind::HostSet, 0).to_u64();
        if self.main.add(host_fd(&self.core.host), epoll::IN, token).is_ok() {
            self.host_active = true;
            self.core.tx_room();
        }
    }

    fn run_timers(&mut self) {
        self.core.run_timers();
    }

    fn deadline(&self) -> Option<Instant> {
        self.core.deadline()
    }
}

fn host_fd(e: &Epoll) -> std::os::fd::BorrowedFd<'_> {
    e.as_fd()
}

fn log_addresses(net: &GuestNet) {
    if let Some(v4) = &net.v4 {
        log::info!(
            "IPv4: guest {}/{}, gateway {}, DNS {:?}{}",
            v4.assigned,
            v4.prefix_len,
            v4.gateway,
            v4.dns,
            v4.dns_host.map(|h| format!(" (forwarded to {h})")).unwrap_or_default()
        );
    }
    if let Some(v6) = &net.v6 {
        log::info!(
            "IPv6: guest {}/{}, gateway {}, router {}, DNS {:?}",
            v6.assigned,
            v6.prefix_len,
            v6.gateway.map(|g| g.to_string()).unwrap_or_else(|| "-".into()),
            v6.our_ll,
            v6.dns
        );
    }
}
