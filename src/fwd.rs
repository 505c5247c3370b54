//! Port forwarding specifications (`-t`, `-u`), in passt's syntax.
//!
//! A spec is `none`, `all`, or `[ADDR/]LIST` where LIST is comma-separated
//! items: `PORT`, `FIRST-LAST`, either optionally mapped to guest ports with
//! `:GUEST` or `:GFIRST-GLAST` (same length), and exclusions `~PORT` or
//! `~FIRST-LAST`. A list made only of exclusions means "all but these".
//! `all` forwards every non-ephemeral port not already bound on the host.

use std::fmt;
use std::net::IpAddr;

/// One forwarded range: host ports `first..=last` go to guest ports
/// starting at `guest_first`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
    pub guest_first: u16,
}

impl PortRange {
    /// The guest port for a host port inside this range.
    pub fn guest_port(&self, host_port: u16) -> u16 {
        self.guest_first.wrapping_add(host_port - self.first)
    }
}

/// A parsed `-t`/`-u` value.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PortSpec {
    /// Bind the listening sockets to this address only.
    pub bind: Option<IpAddr>,
    /// Forward every port (minus exclusions) not bound on the host.
    pub all: bool,
    /// Forward nothing.
    pub none: bool,
    pub ranges: Vec<PortRange>,
    pub excluded: Vec<(u16, u16)>,
}

/// Why a spec was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecError(String);

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn parse_port(s: &str) -> Result<u16, SpecError> {
    match s.parse::<u16>() {
        Ok(0) | Err(_) => Err(SpecError(format!("'{s}' is not a port number 1..=65535"))),
        Ok(p) => Ok(p),
    }
}

fn parse_range(s: &str) -> Result<(u16, u16), SpecError> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (parse_port(a)?, parse_port(b)?),
        None => {
            let p = parse_port(s)?;
            (p, p)
        }
    };
    if a > b {
        return Err(SpecError(format!("range '{s}' goes backwards")));
    }
    Ok((a, b))
}

impl PortSpec {
    pub fn parse(spec: &str) -> Result<PortSpec, SpecError> {
        let mut out = PortSpec::default();
        match spec {
            "none" => {
                out.none = true;
                return Ok(out);
            }
            "all" => {
                out.all = true;
                return Ok(out);
            }
            "" => return Err(SpecError("empty port specification".into())),
            _ => {}
        }
        let list = match spec.rsplit_once('/') {
            Some((addr, list)) => {
                // An interface suffix ("ADDR%eth0") is accepted and ignored.
                let addr = addr.split('%').next().unwrap_or(addr);
                let addr = addr.trim_start_matches('[').trim_end_matches(']');
                out.bind = Some(addr.parse().map_err(|_| SpecError(format!("'{addr}' is not an address")))?);
                list
            }
            None => spec,
        };
        for item in list.split(',') {
            if let Some(ex) = item.strip_prefix('~') {
                out.excluded.push(parse_range(ex)?);
                continue;
            }
            if item == "all" {
                out.all = true;
                continue;
            }
            let (host, guest) = match item.split_once(':') {
                Some((h, g)) => (parse_range(h)?, Some(parse_range(g)?)),
                None => (parse_range(item)?, None),
            };
            let guest_first = match guest {
                None => host.0,
                Some((gf, gl)) => {
                    if gl - gf != host.1 - host.0 && gf != gl {
                        return Err(SpecError(format!("'{item}': host and guest ranges differ in length")));
                    }
                    gf
                }
            };
            out.ranges.push(PortRange { first: host.0, last: host.1, guest_first });
        }
        if out.ranges.is_empty() && !out.excluded.is_empty() {
            out.all = true;
        }
        Ok(out)
    }

    /// Whether `port` is excluded by a `~` item.
    pub fn is_excluded(&self, port: u16) -> bool {
        self.excluded.iter().any(|(a, b)| (*a..=*b).contains(&port))
    }

    /// Whether a forwarded socket on host `port`, opened for a spec with
    /// bind address `bind`, is what this spec names for removal: the same
    /// bind address, and the port listed (or any port, for `all`).
    pub fn names_for_removal(&self, bind: Option<IpAddr>, port: u16) -> bool {
        if self.bind != bind || self.is_excluded(port) {
            return false;
        }
        self.all || self.ranges.iter().any(|r| (r.first..=r.last).contains(&port))
    }

    /// Every (host port, guest port) pair this spec forwards explicitly
    /// (`all` is resolved by the caller, which knows what the host binds).
    pub fn explicit_ports(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        self.ranges
            .iter()
            .flat_map(|r| (r.first..=r.last).map(move |p| (p, r.guest_port(p))))
            .filter(|(p, _)| !self.is_excluded(*p))
    }
}

/// The first explicit port of `spec` that one of `bound` (bind address,
/// host port of the sockets already forwarding) takes already. A set
/// first: ranges and listeners may both number in the tens of thousands.
pub fn first_taken(spec: &PortSpec, bound: impl Iterator<Item = (Option<IpAddr>, u16)>) -> Option<u16> {
    let ours: std::collections::HashSet<u16> =
        bound.filter(|(bind, _)| binds_overlap(*bind, spec.bind)).map(|(_, port)| port).collect();
    spec.explicit_ports().map(|(host, _)| host).find(|h| ours.contains(h))
}

/// Whether sockets bound on `a` and `b` (`None`: the wildcard) would
/// take the same traffic for a port.
pub fn binds_overlap(a: Option<IpAddr>, b: Option<IpAddr>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y || x.is_unspecified() || y.is_unspecified(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let s = PortSpec::parse("22").unwrap();
        assert_eq!(s.explicit_ports().collect::<Vec<_>>(), vec![(22, 22)]);
        let s = PortSpec::parse("8080:80").unwrap();
        assert_eq!(s.explicit_ports().collect::<Vec<_>>(), vec![(8080, 80)]);
        let s = PortSpec::parse("1000-1005,~1002-1003").unwrap();
        assert_eq!(s.explicit_ports().map(|p| p.0).collect::<Vec<_>>(), vec![1000, 1001, 1004, 1005]);
        let s = PortSpec::parse("2000-2002:3000-3002").unwrap();
        assert_eq!(s.explicit_ports().collect::<Vec<_>>(), vec![(2000, 3000), (2001, 3001), (2002, 3002)]);
        let s = PortSpec::parse("127.0.0.1/5000").unwrap();
        assert_eq!(s.bind, Some("127.0.0.1".parse().unwrap()));
        let s = PortSpec::parse("::1/5000").unwrap();
        assert_eq!(s.bind, Some("::1".parse().unwrap()));
        assert!(PortSpec::parse("~22").unwrap().all);
        assert!(PortSpec::parse("all").unwrap().all);
        assert!(PortSpec::parse("none").unwrap().none);
    }

    #[test]
    fn removal_and_overlap() {
        let s = PortSpec::parse("8000-8002,~8001").unwrap();
        assert!(s.names_for_removal(None, 8000) && s.names_for_removal(None, 8002));
        assert!(!s.names_for_removal(None, 8001) && !s.names_for_removal(None, 7999));
        assert!(!s.names_for_removal(Some("127.0.0.1".parse().unwrap()), 8000));
        let all = PortSpec::parse("127.0.0.1/all").unwrap();
        assert!(all.names_for_removal(Some("127.0.0.1".parse().unwrap()), 12345));
        assert!(!all.names_for_removal(None, 12345));
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(binds_overlap(None, Some(lo)) && binds_overlap(Some(lo), Some(lo)));
        assert!(binds_overlap(Some("0.0.0.0".parse().unwrap()), Some(lo)));
        assert!(!binds_overlap(Some(lo), Some("127.0.0.2".parse().unwrap())));
    }

    #[test]
    fn errors() {
        for bad in ["", "0", "70000", "10-5", "x", "1-3:5-9", "300.1.1.1/22", "22,"] {
            assert!(PortSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
