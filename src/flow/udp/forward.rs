//! Forwarded UDP ports added and removed at run time.
//!
//! Adding is all or nothing: a port we forward already, or one bound by
//! another process, is an error naming it, and the sockets opened for the
//! spec so far are closed again. Removing closes the bound sockets and the
//! inbound flows that came through them (their replies left through those
//! sockets, so they cannot go on); outbound flows are not affected.

use super::table::Kind;
use super::Udp;
use crate::flow::FlowCtx;
use crate::fwd::{first_taken, PortSpec};

impl Udp {
    /// Forwards one more spec; returns the sockets opened.
    ///
    /// # Errors
    /// A message naming the port when an explicit port is forwarded already
    /// or cannot be bound; then nothing of `spec` stays open.
    pub fn forward_add(&mut self, ctx: &mut FlowCtx, spec: &PortSpec) -> Result<usize, String> {
        if let Some(host) = first_taken(spec, self.listeners.iter().map(|(_, l)| (l.bind, l.bound.port()))) {
            return Err(format!("UDP port {host} is already forwarded"));
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

    /// Closes the sockets `spec` names (same bind address; its ports, or
    /// all for `all`) and their inbound flows; returns how many sockets.
    pub fn forward_remove(&mut self, ctx: &mut FlowCtx, spec: &PortSpec) -> usize {
        // Queued guest datagrams may name a listener by index: send them
        // before the index can be reused.
        self.flush(ctx);
        let doomed: std::collections::HashSet<u32> = self
            .listeners
            .iter()
            .filter(|(_, l)| spec.names_for_removal(l.bind, l.bound.port()))
            .map(|(i, _)| i as u32)
            .collect();
        if doomed.is_empty() {
            return 0;
        }
        for idx in self.table.indices() {
            let through_doomed = matches!(self.table.at(idx).map(|f| &f.kind), Some(Kind::In(f)) if doomed.contains(&f.listener));
            if through_doomed {
                self.close(ctx, idx);
            }
        }
        for &i in &doomed {
            if let Some(l) = self.listeners.remove(i as usize) {
                log::debug!("UDP: no longer forwarding {}", l.bound);
            }
        }
        doomed.len()
    }
}
