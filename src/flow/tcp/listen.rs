//! Inbound TCP: listening sockets for forwarded ports (`-t`), and accepted
//! connections turned into SYNs to the guest.
//!
//! Without a bind address, one dual-stack socket on `[::]` (IPV6_V6ONLY
//! off) takes both IPv4 and IPv6 connections; on a host without IPv6, one
//! on `0.0.0.0`. `all` forwards every port below the ephemeral range
//! (`/proc/sys/net/ipv4/ip_local_port_range`) that nobody else has bound,
//! as passt does; a port in use is skipped there, but is an error when it
//! was asked for explicitly.
//!
//! At run time [`Tcp::forward_add`] opens the sockets of one more spec (all
//! or nothing: a port already forwarded by us or bound by someone else is
//! an error naming it, and what was opened for the spec is closed again),
//! and [`Tcp::forward_remove`] closes listening sockets. Connections
//! accepted earlier have sockets of their own and carry on.

use super::conn::{Conn, State};
use super::{Tcp, ACCEPT_BATCH, CONN_EVENTS};
use crate::flow::FlowCtx;
use crate::fwd::{first_taken, PortSpec};
use crate::sys::{self, epoll, tcp as stcp};
use crate::token::{Kind, Token};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};

/// Pending connections a listening socket holds (the kernel caps it at
/// `net.core.somaxconn`).
const BACKLOG: i32 = 4096;

pub(super) struct Listener {
    pub fd: OwnedFd,
    /// The spec's bind address (`None`: the wildcard).
    pub bind: Option<IpAddr>,
    pub host_port: u16,
    pub guest_port: u16,
}

/// The first port of the ephemeral range (what `all` stops before); 32768,
/// the kernel's default, if it cannot be read.
pub fn ephemeral_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|p| p.parse().ok()))
        .unwrap_or(32768)
}

/// Ports `all` tries for this spec: below `end`, not excluded, not listed
/// explicitly (those are bound with their own mapping).
pub(super) fn all_ports(spec: &PortSpec, end: u16) -> impl Iterator<Item = u16> + '_ {
    (1..end).filter(move |&p| !spec.is_excluded(p) && !spec.ranges.iter().any(|r| (r.first..=r.last).contains(&p)))
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

/// The reserve fd of [`Tcp::shed_one`].
fn open_spare() -> Option<OwnedFd> {
    std::fs::File::open("/dev/null").ok().map(OwnedFd::from)
}

/// A listening socket on `bind` (or dual-stack wildcard) and `port`.
fn listening_socket(bind: Option<IpAddr>, port: u16) -> io::Result<OwnedFd> {
    let (addr, dual) = match bind {
        None => (SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), port), true),
        Some(ip) => (SocketAddr::new(ip, port), ip == IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
    };
    let fd = match sys::net::socket(sys::net::family(&addr), libc::SOCK_STREAM, 0) {
        Err(e) if bind.is_none() && errno(&e) == libc::EAFNOSUPPORT => {
            return listening_socket(Some(Ipv4Addr::UNSPECIFIED.into()), port);
        }
        r => r?,
    };
    sys::net::setsockopt_int(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    if addr.is_ipv6() {
        sys::net::setsockopt_int(fd.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, i32::from(!dual))?;
    }
    sys::net::bind(fd.as_fd(), &addr)?;
    sys::net::listen(fd.as_fd(), BACKLOG)?;
    Ok(fd)
}

impl Tcp {
    /// Opens listening sockets for the forwarded ports of `specs` (`-t`),
    /// registered in `ctx.host`. An explicit port that cannot be bound is
    /// an error naming it; `all` skips ports in use.
    pub fn listen(&mut self, ctx: &mut FlowCtx, specs: &[PortSpec]) -> Result<(), String> {
        for spec in specs {
            self.listen_spec(ctx, spec, &mut Vec::new())?;
        }
        Ok(())
    }

    /// Forwards one more spec at run time; returns the sockets opened.
    ///
    /// # Errors
    /// A message naming the port when an explicit port is forwarded already
    /// or cannot be bound; then nothing of `spec` stays open.
    pub fn forward_add(&mut self, ctx: &mut FlowCtx, spec: &PortSpec) -> Result<usize, String> {
        if let Some(host) = first_taken(spec, self.listeners.iter().map(|(_, l)| (l.bind, l.host_port))) {
            return Err(format!("TCP port {host} is already forwarded"));
        }
        let mut opened = Vec::new();
        match self.listen_spec(ctx, spec, &mut opened) {
            Ok(()) => Ok(opened.len()),
            Err(e) => {
                for idx in opened {
                    self.listeners.remove(idx as usize);
                }
                Err(e)
            }
        }
    }

    /// Closes the listening sockets `spec` names (same bind address; its
    /// ports, or every port for `all`); returns how many. Accepted
    /// connections are not affected.
    pub fn forward_remove(&mut self, spec: &PortSpec) -> usize {
        let doomed: Vec<usize> = self
            .listeners
            .iter()
            .filter(|(_, l)| spec.names_for_removal(l.bind, l.host_port))
            .map(|(i, _)| i)
            .collect();
        for &i in &doomed {
            // Dropping the socket takes it out of the epoll set.
            if let Some(l) = self.listeners.remove(i) {
                log::debug!("TCP: no longer listening on port {}", l.host_port);
            }
        }
        doomed.len()
    }

    /// Opens the sockets of one spec; the indices opened go to `opened`.
    fn listen_spec(&mut self, ctx: &mut FlowCtx, spec: &PortSpec, opened: &mut Vec<u32>) -> Result<(), String> {
        {
            if spec.none {
                return Ok(());
            }
            for (host, guest) in spec.explicit_ports() {
                let idx = self.open_listener(ctx, spec.bind, host, guest).map_err(|e| match spec.bind {
                    Some(a) => format!("TCP port {host} on {a}: {e}"),
                    None => format!("TCP port {host}: {e}"),
                })?;
                opened.push(idx);
            }
            if spec.all {
                let end = ephemeral_port_start();
                let mut bound = 0usize;
                // Ports we forward already fail to bind, like any port in use.
                for port in all_ports(spec, end) {
                    match self.open_listener(ctx, spec.bind, port, port) {
                        Ok(idx) => {
                            opened.push(idx);
                            bound += 1;
                        }
                        Err(e) if matches!(errno(&e), libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM) => {
                            log::warn!("TCP: stopped forwarding at port {port} of 'all': {e}");
                            break;
                        }
                        // In use, privileged, or otherwise not ours to take.
                        Err(e) => log::trace!("TCP: not forwarding port {port}: {e}"),
                    }
                }
                log::info!("TCP: forwarding {bound} unbound ports below {end} (all)");
            }
        }
        Ok(())
    }

    fn open_listener(&mut self, ctx: &mut FlowCtx, bind: Option<IpAddr>, host_port: u16, guest_port: u16) -> io::Result<u32> {
        let fd = listening_socket(bind, host_port)?;
        if self.spare.is_none() {
            self.spare = open_spare();
        }
        let token = Token::new(Kind::TcpListen, self.listeners.next_index()).to_u64();
        ctx.host.add(fd.as_fd(), epoll::IN, token)?;
        log::debug!("TCP: listening on port {host_port} for guest port {guest_port}");
        Ok(self.listeners.insert(super::listen::Listener { fd, bind, host_port, guest_port }))
    }

    /// Out of fds with connections waiting, a listener stays readable and
    /// the loop would spin on it: the spare fd is given up for a moment to
    /// accept the oldest waiting connection and reset it, then taken back
    /// (the peer sees a reset rather than a hang; the loop sleeps).
    fn shed_one(&mut self, li: usize) {
        let Some(spare) = self.spare.take() else { return };
        drop(spare);
        if let Some(l) = self.listeners.get(li) {
            if let Ok((sock, _)) = sys::net::accept(l.fd.as_fd()) {
                let _ = stcp::set_linger_zero(sock.as_fd());
            }
        }
        self.spare = open_spare();
    }

    /// Accepts pending connections on listener `li`; each becomes a SYN to
    /// the guest (or is reset when it cannot be one).
    pub(super) fn accept(&mut self, ctx: &mut FlowCtx, li: usize) {
        for _ in 0..ACCEPT_BATCH {
            let Some(l) = self.listeners.get(li) else { return };
            let guest_port = l.guest_port;
            let (sock, peer) = match sys::net::accept(l.fd.as_fd()) {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if matches!(errno(&e), libc::EMFILE | libc::ENFILE) => {
                    ctx.budget.socket_failed(ctx.now, &format!("accept a connection on TCP port {}", l.host_port), &e);
                    self.shed_one(li);
                    return;
                }
                Err(e) => {
                    // ECONNABORTED and friends: that one is gone.
                    log::debug!("TCP: accept on port {}: {e}", l.host_port);
                    if errno(&e) == libc::ECONNABORTED {
                        continue;
                    }
                    return;
                }
            };
            let reset = |sock: OwnedFd| {
                let _ = stcp::set_linger_zero(sock.as_fd());
            };
            let Some((src, to)) = peer.and_then(|p| ctx.net.inbound(p)) else {
                log::debug!("TCP: no guest address for a connection from {peer:?}");
                reset(sock);
                continue;
            };
            let guest = SocketAddr::new(to.ip(), guest_port);
            if self.by_tuple.contains_key(&(guest, src)) {
                log::debug!("TCP: {src} -> {guest} already in use");
                reset(sock);
                continue;
            }
            if !ctx.budget.try_take(ctx.now, "TCP") {
                ctx.stats.drop(crate::stats::Drop::Limit);
                reset(sock);
                continue;
            }
            let (idx, gen) = self.alloc();
            let token = Token::with_gen(Kind::TcpConn, idx, gen).to_u64();
            if let Err(e) = ctx.host.add(sock.as_fd(), CONN_EVENTS, token) {
                log::warn!("TCP: cannot watch a socket: {e}");
                self.free.push(idx);
                ctx.budget.release();
                reset(sock);
                continue;
            }
            let isn = self.isn(guest, src, ctx.now);
            let mut conn = Conn::new(sock, token, State::SynSent, guest, src, isn, ctx.now);
            if !self.use_peek_off {
                conn.disable_peek_off();
            }
            log::debug!("TCP {guest} <- {src}: inbound from {peer:?}");
            conn.send_syn(ctx);
            self.insert(ctx.now, idx, conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_skips_exclusions_and_explicit_ranges() {
        let spec = PortSpec::parse("~20-25,~80").unwrap();
        let ports: Vec<u16> = all_ports(&spec, 100).collect();
        assert_eq!(ports.len(), 99 - 6 - 1);
        assert!(!ports.contains(&22) && !ports.contains(&80) && ports.contains(&19) && ports.contains(&99));
        let mut spec = PortSpec::parse("5000:6000").unwrap();
        spec.all = true;
        assert!(!all_ports(&spec, 32768).any(|p| p == 5000));
        assert_eq!(all_ports(&spec, 32768).count(), 32766);
    }

    #[test]
    fn ephemeral_start_is_sane() {
        let p = ephemeral_port_start();
        assert!(p >= 1024, "{p}");
    }
}
