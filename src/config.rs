//! Configuration: passt's command-line options as typed values.
//!
//! Every option is known by passt's long name without dashes ("address",
//! "tcp-ports", ...). [`Config::set`] validates one value at once, so an error
//! always names the key and the bad value; [`Config::parse_args`] reads a
//! whole passt command line (short and long forms) through the same table;
//! [`Config::validate`] checks the combination when an instance is created.
//!
//! Options that concern only a process (foreground, pid file, log file...)
//! are accepted and stored so that a daemon built on the library reads them
//! back with [`Config::get`]; the library itself ignores them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// passt's default MTU: the largest IPv4 datagram that fits 64 KiB frames.
pub const MAX_MTU: u32 = 65520;
/// IPv4's minimum MTU (RFC 791).
pub const MIN_MTU_V4: u32 = 68;
/// IPv6's minimum MTU (RFC 8200): below it IPv6 is switched off.
pub const MIN_MTU_V6: u32 = 1280;
/// The MAC address we use towards the guest, as passt does by default.
pub const DEFAULT_OUR_MAC: [u8; 6] = [0x9a, 0x55, 0x9a, 0x55, 0x9a, 0x55];
/// Default limit on flows (TCP connections, UDP flows, ping flows together).
pub const DEFAULT_MAX_FLOWS: usize = 8192;

/// Whether an option takes a value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Arg {
    /// A flag: `--ipv4-only`.
    None,
    /// A value: `--mtu 1500` or `--mtu=1500`.
    Required,
}

/// One entry of the option table.
struct OptSpec {
    long: &'static str,
    short: Option<char>,
    arg: Arg,
}

const fn opt(long: &'static str, short: Option<char>, arg: Arg) -> OptSpec {
    OptSpec { long, short, arg }
}

/// passt's options (plus the library's own: `frames`, `socket-mode`,
/// `max-flows`, `ns-ifname`). The order is that of passt's manual.
const OPTIONS: &[OptSpec] = &[
    opt("debug", Some('d'), Arg::None),
    opt("quiet", Some('q'), Arg::None),
    opt("foreground", Some('f'), Arg::None),
    opt("log-file", Some('l'), Arg::Required),
    opt("help", Some('h'), Arg::None),
    opt("version", None, Arg::None),
    opt("pid", Some('P'), Arg::Required),
    opt("runas", None, Arg::Required),
    opt("one-off", Some('1'), Arg::None),
    opt("socket", Some('s'), Arg::Required),
    opt("socket-mode", None, Arg::Required),
    opt("fd", Some('F'), Arg::Required),
    opt("netns", None, Arg::Required),
    opt("ns-ifname", None, Arg::Required),
    opt("config-net", None, Arg::None),
    opt("frames", None, Arg::None),
    opt("pcap", Some('p'), Arg::Required),
    opt("mtu", Some('m'), Arg::Required),
    opt("address", Some('a'), Arg::Required),
    opt("netmask", Some('n'), Arg::Required),
    opt("mac-addr", Some('M'), Arg::Required),
    opt("gateway", Some('g'), Arg::Required),
    opt("interface", Some('i'), Arg::Required),
    opt("outbound", Some('o'), Arg::Required),
    opt("dns", Some('D'), Arg::Required),
    opt("dns-forward", None, Arg::Required),
    opt("search", Some('S'), Arg::Required),
    opt("no-tcp", None, Arg::None),
    opt("no-udp", None, Arg::None),
    opt("no-icmp", None, Arg::None),
    opt("no-dhcp", None, Arg::None),
    opt("no-ndp", None, Arg::None),
    opt("no-dhcpv6", None, Arg::None),
    opt("no-ra", None, Arg::None),
    opt("no-dhcp-dns", None, Arg::None),
    opt("no-dhcp-search", None, Arg::None),
    opt("no-map-gw", None, Arg::None),
    opt("map-host-loopback", None, Arg::Required),
    opt("map-guest-addr", None, Arg::Required),
    opt("freebind", None, Arg::None),
    opt("ipv4-only", Some('4'), Arg::None),
    opt("ipv6-only", Some('6'), Arg::None),
    opt("tcp-ports", Some('t'), Arg::Required),
    opt("udp-ports", Some('u'), Arg::Required),
    opt("max-flows", None, Arg::Required),
    // Accepted for compatibility with the programs that start passt (QEMU's
    // -netdev passt passes them); stored, not used yet.
    opt("hostname", Some('H'), Arg::Required),
    opt("fqdn", None, Arg::Required),
    opt("dns-host", None, Arg::Required),
    opt("outbound-if4", None, Arg::Required),
    opt("outbound-if6", None, Arg::Required),
];

/// A configuration error: which key, which value, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn bad(key: &str, value: &str, why: impl fmt::Display) -> ConfigError {
    ConfigError(format!("invalid value '{value}' for '{key}': {why}"))
}

/// How the guest is attached: exactly one per instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attach {
    /// Listen on a UNIX stream socket (QEMU `-netdev stream`), with this mode.
    Socket { path: PathBuf, mode: u32 },
    /// An already connected stream socket (qrap, QEMU `-netdev passt`).
    Fd(i32),
    /// A tap device inside the network namespace at `path`.
    Netns { path: PathBuf, ifname: String, config_net: bool },
    /// In-process frames: input call and output callback.
    Frames,
}

/// The typed configuration. `None` fields are filled from the host's own
/// network configuration when the instance starts.
#[derive(Clone, Debug)]
pub struct Config {
    /// Every key set, in order, as given: what [`Config::get`] returns.
    raw: Vec<(String, String)>,
    pub socket: Option<PathBuf>,
    pub socket_mode: u32,
    pub fd: Option<i32>,
    pub netns: Option<PathBuf>,
    pub ns_ifname: String,
    pub config_net: bool,
    pub frames: bool,
    pub one_off: bool,
    pub pcap: Option<PathBuf>,
    pub mtu: u32,
    pub addr4: Option<Ipv4Addr>,
    pub prefix4: Option<u8>,
    pub addr6: Option<Ipv6Addr>,
    pub gw4: Option<Ipv4Addr>,
    pub gw6: Option<Ipv6Addr>,
    pub our_mac: [u8; 6],
    pub interface: Option<String>,
    pub outbound4: Option<Ipv4Addr>,
    pub outbound6: Option<Ipv6Addr>,
    /// DNS servers given with `-D`; `dns_none` when `-D none`.
    pub dns: Vec<IpAddr>,
    pub dns_none: bool,
    pub dns_forward4: Option<Ipv4Addr>,
    pub dns_forward6: Option<Ipv6Addr>,
    pub search: Vec<String>,
    pub search_none: bool,
    pub no_tcp: bool,
    pub no_udp: bool,
    pub no_icmp: bool,
    pub no_dhcp: bool,
    pub no_ndp: bool,
    pub no_dhcpv6: bool,
    pub no_ra: bool,
    pub no_dhcp_dns: bool,
    pub no_dhcp_search: bool,
    pub no_map_gw: bool,
    pub map_host_loopback4: Option<Ipv4Addr>,
    pub map_host_loopback6: Option<Ipv6Addr>,
    pub map_guest_addr4: Option<Ipv4Addr>,
    pub map_guest_addr6: Option<Ipv6Addr>,
    pub freebind: bool,
    pub ipv4_only: bool,
    pub ipv6_only: bool,
    /// Port forwarding specs (`-t`, `-u`), in passt's syntax, in order.
    pub tcp_ports: Vec<String>,
    pub udp_ports: Vec<String>,
    pub max_flows: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            raw: Vec::new(),
            socket: None,
            socket_mode: 0o600,
            fd: None,
            netns: None,
            ns_ifname: "tap0".into(),
            config_net: false,
            frames: false,
            one_off: false,
            pcap: None,
            mtu: MAX_MTU,
            addr4: None,
            prefix4: None,
            addr6: None,
            gw4: None,
            gw6: None,
            our_mac: DEFAULT_OUR_MAC,
            interface: None,
            outbound4: None,
            outbound6: None,
            dns: Vec::new(),
            dns_none: false,
            dns_forward4: None,
            dns_forward6: None,
            search: Vec::new(),
            search_none: false,
            no_tcp: false,
            no_udp: false,
            no_icmp: false,
            no_dhcp: false,
            no_ndp: false,
            no_dhcpv6: false,
            no_ra: false,
            no_dhcp_dns: false,
            no_dhcp_search: false,
            no_map_gw: false,
            map_host_loopback4: None,
            map_host_loopback6: None,
            map_guest_addr4: None,
            map_guest_addr6: None,
            freebind: false,
            ipv4_only: false,
            ipv6_only: false,
            tcp_ports: Vec::new(),
            udp_ports: Vec::new(),
            max_flows: DEFAULT_MAX_FLOWS,
        }
    }
}

/// Parses a MAC address written as six colon-separated hex octets.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.split(':');
    for byte in mac.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// Parses a prefix length ("24") or a dotted IPv4 netmask ("255.255.255.0").
fn parse_netmask(s: &str) -> Option<u8> {
    if let Ok(len) = s.parse::<u8>() {
        return (len <= 32).then_some(len);
    }
    let mask = u32::from(s.parse::<Ipv4Addr>().ok()?);
    // A netmask is ones then zeros: its complement plus one is a power of two.
    (mask.leading_ones() + mask.trailing_zeros() == 32).then_some(mask.leading_ones() as u8)
}

fn parse_flag(key: &str, value: &str) -> Result<bool, ConfigError> {
    match value {
        "" | "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        _ => Err(bad(key, value, "expected a flag (empty, yes/no, 1/0)")),
    }
}

fn parse_ip(key: &str, value: &str) -> Result<IpAddr, ConfigError> {
    value.parse().map_err(|_| bad(key, value, "not an IPv4 or IPv6 address"))
}

/// A DNS search domain: letters, digits, '-' and '.', labels of 1..63 bytes.
fn valid_domain(s: &str) -> bool {
    let s = s.strip_suffix('.').unwrap_or(s);
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl Config {
    /// A configuration with passt's defaults and no guest attachment yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value last set for `key` (long option name); `""` for a flag that
    /// is set; `None` when never set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.raw.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Sets one option by its long name. Values use passt's command-line
    /// syntax; flags take an empty value (or yes/no). Repeatable options
    /// (`dns`, `search`, `tcp-ports`, `udp-ports`, and `address`/`gateway`
    /// once per IP version) accumulate.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        let Some(spec) = OPTIONS.iter().find(|o| o.long == key) else {
            return Err(ConfigError(format!("unknown option '{key}'")));
        };
        if spec.arg == Arg::Required && value.is_empty() {
            return Err(ConfigError(format!("option '{key}' needs a value")));
        }
        self.apply(key, value)?;
        self.raw.push((key.to_string(), value.to_string()));
        Ok(())
    }

    fn apply(&mut self, key: &str, value: &str) -> Result<(), ConfigError> {
        match key {
            // Process-level options: only stored (see the module comment),
            // but checked here so that the daemon's errors name them too.
            "debug" | "quiet" | "foreground" | "help" | "version" => {
                parse_flag(key, value)?;
            }
            "log-file" | "pid" | "outbound-if4" | "outbound-if6" => {}
            "hostname" | "fqdn" => {
                if !valid_domain(value) {
                    return Err(bad(key, value, "not a valid host name"));
                }
            }
            "dns-host" => {
                parse_ip(key, value)?;
            }
            "runas" => {
                let ok = value.split(':').count() <= 2 && value.split(':').all(|p| !p.is_empty());
                if !ok {
                    return Err(bad(key, value, "expected UID[:GID] or USER[:GROUP]"));
                }
            }
            "one-off" => self.one_off = parse_flag(key, value)?,
            "socket" => self.socket = Some(PathBuf::from(value)),
            "socket-mode" => {
                self.socket_mode = u32::from_str_radix(value, 8)
                    .ok()
                    .filter(|m| *m <= 0o777)
                    .ok_or_else(|| bad(key, value, "expected an octal mode such as 0600"))?;
            }
            "fd" => {
                let fd: i32 = value.parse().map_err(|_| bad(key, value, "not a file descriptor number"))?;
                if fd < 0 {
                    return Err(bad(key, value, "file descriptors are not negative"));
                }
                self.fd = Some(fd);
            }
            "netns" => self.netns = Some(PathBuf::from(value)),
            "ns-ifname" => {
                if value.len() >= 16 || value.contains('/') || value.contains(char::is_whitespace) {
                    return Err(bad(key, value, "not a valid interface name (at most 15 bytes)"));
                }
                self.ns_ifname = value.to_string();
            }
            "config-net" => self.config_net = parse_flag(key, value)?,
            "frames" => self.frames = parse_flag(key, value)?,
            "pcap" => self.pcap = Some(PathBuf::from(value)),
            "mtu" => {
                let mtu: u32 = value.parse().map_err(|_| bad(key, value, "not a number"))?;
                if !(MIN_MTU_V4..=MAX_MTU).contains(&mtu) {
                    return Err(bad(key, value, format!("MTU must be {MIN_MTU_V4}..={MAX_MTU}")));
                }
                self.mtu = mtu;
            }
            "address" => match parse_ip(key, value)? {
                IpAddr::V4(a) if a.is_unspecified() || a.is_broadcast() || a.is_multicast() => {
                    return Err(bad(key, value, "not usable as a guest address"))
                }
                IpAddr::V6(a) if a.is_unspecified() || a.is_multicast() => {
                    return Err(bad(key, value, "not usable as a guest address"))
                }
                IpAddr::V4(a) => self.addr4 = Some(a),
                IpAddr::V6(a) => self.addr6 = Some(a),
            },
            "netmask" => {
                self.prefix4 = Some(
                    parse_netmask(value).ok_or_else(|| bad(key, value, "expected a prefix length 0..=32 or a netmask"))?,
                )
            }
            "mac-addr" => {
                let mac = parse_mac(value).ok_or_else(|| bad(key, value, "expected a MAC address like 9a:55:9a:55:9a:55"))?;
                if mac[0] & 1 != 0 || mac == [0; 6] {
                    return Err(bad(key, value, "not a unicast MAC address"));
                }
                self.our_mac = mac;
            }
            "gateway" => match parse_ip(key, value)? {
                IpAddr::V4(a) => self.gw4 = Some(a),
                IpAddr::V6(a) => self.gw6 = Some(a),
            },
            "interface" => self.interface = Some(value.to_string()),
            "outbound" => match parse_ip(key, value)? {
                IpAddr::V4(a) => self.outbound4 = Some(a),
                IpAddr::V6(a) => self.outbound6 = Some(a),
            },
            "dns" => {
                if value == "none" {
                    self.dns_none = true;
                    self.dns.clear();
                } else {
                    self.dns.push(parse_ip(key, value)?);
                }
            }
            "dns-forward" => match parse_ip(key, value)? {
                IpAddr::V4(a) => self.dns_forward4 = Some(a),
                IpAddr::V6(a) => self.dns_forward6 = Some(a),
            },
            "search" => {
                if value == "none" {
                    self.search_none = true;
                    self.search.clear();
                } else {
                    for domain in value.split_whitespace() {
                        if !valid_domain(domain) {
                            return Err(bad(key, value, "not a valid domain name"));
                        }
                        self.search.push(domain.trim_end_matches('.').to_string());
                    }
                }
            }
            "no-tcp" => self.no_tcp = parse_flag(key, value)?,
            "no-udp" => self.no_udp = parse_flag(key, value)?,
            "no-icmp" => self.no_icmp = parse_flag(key, value)?,
            "no-dhcp" => self.no_dhcp = parse_flag(key, value)?,
            "no-ndp" => self.no_ndp = parse_flag(key, value)?,
            "no-dhcpv6" => self.no_dhcpv6 = parse_flag(key, value)?,
            "no-ra" => self.no_ra = parse_flag(key, value)?,
            "no-dhcp-dns" => self.no_dhcp_dns = parse_flag(key, value)?,
            "no-dhcp-search" => self.no_dhcp_search = parse_flag(key, value)?,
            "no-map-gw" => self.no_map_gw = parse_flag(key, value)?,
            "map-host-loopback" => match value {
                "none" => {
                    self.no_map_gw = true;
                }
                _ => match parse_ip(key, value)? {
                    IpAddr::V4(a) => self.map_host_loopback4 = Some(a),
                    IpAddr::V6(a) => self.map_host_loopback6 = Some(a),
                },
            },
            "map-guest-addr" => match value {
                "none" => {}
                _ => match parse_ip(key, value)? {
                    IpAddr::V4(a) => self.map_guest_addr4 = Some(a),
                    IpAddr::V6(a) => self.map_guest_addr6 = Some(a),
                },
            },
            "freebind" => self.freebind = parse_flag(key, value)?,
            "ipv4-only" => self.ipv4_only = parse_flag(key, value)?,
            "ipv6-only" => self.ipv6_only = parse_flag(key, value)?,
            "tcp-ports" => {
                crate::fwd::PortSpec::parse(value).map_err(|e| bad(key, value, e))?;
                self.tcp_ports.push(value.to_string());
            }
            "udp-ports" => {
                crate::fwd::PortSpec::parse(value).map_err(|e| bad(key, value, e))?;
                self.udp_ports.push(value.to_string());
            }
            "max-flows" => {
                self.max_flows = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=1_000_000).contains(n))
                    .ok_or_else(|| bad(key, value, "expected a number of flows 1..=1000000"))?;
            }
            _ => unreachable!("every key of OPTIONS is handled above"),
        }
        Ok(())
    }

    /// Parses a passt command line; `args[0]` is the program name. Accepts
    /// `-x VALUE`, `-xVALUE`, `--long VALUE`, `--long=VALUE` and grouped
    /// short flags (`-f4`). Stops at `--`; other non-option words are errors.
    pub fn parse_args<S: AsRef<str>>(&mut self, args: &[S]) -> Result<(), ConfigError> {
        let mut i = 1;
        while i < args.len() {
            let word = args[i].as_ref();
            i += 1;
            if word == "--" {
                break;
            }
            if let Some(long) = word.strip_prefix("--") {
                let (name, inline) = match long.split_once('=') {
                    Some((n, v)) => (n, Some(v)),
                    None => (long, None),
                };
                let Some(spec) = OPTIONS.iter().find(|o| o.long == name) else {
                    return Err(ConfigError(format!("unknown option '--{name}'")));
                };
                let value = match (spec.arg, inline) {
                    (Arg::None, Some(_)) => {
                        return Err(ConfigError(format!("option '--{name}' takes no value")));
                    }
                    (Arg::None, None) => "",
                    (Arg::Required, Some(v)) => v,
                    (Arg::Required, None) => {
                        let Some(v) = args.get(i) else {
                            return Err(ConfigError(format!("option '--{name}' needs a value")));
                        };
                        i += 1;
                        v.as_ref()
                    }
                };
                self.set(name, value)?;
            } else if let Some(shorts) = word.strip_prefix('-').filter(|s| !s.is_empty()) {
                for (pos, c) in shorts.char_indices() {
                    let Some(spec) = OPTIONS.iter().find(|o| o.short == Some(c)) else {
                        return Err(ConfigError(format!("unknown option '-{c}'")));
                    };
                    if spec.arg == Arg::None {
                        self.set(spec.long, "")?;
                        continue;
                    }
                    let rest = &shorts[pos + c.len_utf8()..];
                    let value = if !rest.is_empty() {
                        rest
                    } else if let Some(v) = args.get(i) {
                        i += 1;
                        v.as_ref()
                    } else {
                        return Err(ConfigError(format!("option '-{c}' (--{}) needs a value", spec.long)));
                    };
                    self.set(spec.long, value)?;
                    break;
                }
            } else {
                return Err(ConfigError(format!("unexpected argument '{word}'")));
            }
        }
        Ok(())
    }

    /// The guest attachment; errors when none or more than one is chosen.
    pub fn attach(&self) -> Result<Attach, ConfigError> {
        let mut chosen = Vec::new();
        if let Some(path) = &self.socket {
            chosen.push(Attach::Socket { path: path.clone(), mode: self.socket_mode });
        }
        if let Some(fd) = self.fd {
            chosen.push(Attach::Fd(fd));
        }
        if let Some(path) = &self.netns {
            chosen.push(Attach::Netns { path: path.clone(), ifname: self.ns_ifname.clone(), config_net: self.config_net });
        }
        if self.frames {
            chosen.push(Attach::Frames);
        }
        match chosen.len() {
            1 => Ok(chosen.remove(0)),
            0 => Err(ConfigError("no guest attachment: set one of 'socket', 'fd', 'netns' or 'frames'".into())),
            _ => Err(ConfigError("more than one guest attachment: set only one of 'socket', 'fd', 'netns', 'frames'".into())),
        }
    }

    /// Checks the combination of options (each value was checked by `set`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.attach()?;
        if self.ipv4_only && self.ipv6_only {
            return Err(ConfigError("'ipv4-only' and 'ipv6-only' exclude each other".into()));
        }
        if self.config_net && self.netns.is_none() {
            return Err(ConfigError("'config-net' needs 'netns'".into()));
        }
        if self.ipv6_only && self.mtu < MIN_MTU_V6 {
            return Err(ConfigError(format!("MTU {} is below IPv6's minimum of {MIN_MTU_V6}", self.mtu)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_short_forms() {
        let mut c = Config::new();
        c.parse_args(&["passt", "-f", "--socket", "/tmp/x.sock", "-m1500", "--address=10.0.0.2", "-n", "255.255.255.0", "-4"])
            .unwrap();
        assert_eq!(c.get("foreground"), Some(""));
        assert_eq!(c.socket.as_deref(), Some(std::path::Path::new("/tmp/x.sock")));
        assert_eq!(c.mtu, 1500);
        assert_eq!(c.addr4, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(c.prefix4, Some(24));
        assert!(c.ipv4_only);
        c.validate().unwrap();
    }

    #[test]
    fn grouped_short_flags_and_value() {
        let mut c = Config::new();
        c.parse_args(&["passt", "-f4s", "/tmp/y"]).unwrap();
        assert!(c.ipv4_only);
        assert_eq!(c.get("socket"), Some("/tmp/y"));
    }

    #[test]
    fn errors_name_option_and_value() {
        let cases: &[(&[&str], &str)] = &[
            (&["p", "--mtu", "70000"], "'70000' for 'mtu'"),
            (&["p", "--mtu", "x"], "'x' for 'mtu'"),
            (&["p", "--bogus"], "'--bogus'"),
            (&["p", "-Z"], "'-Z'"),
            (&["p", "--address", "1.2.3"], "'1.2.3' for 'address'"),
            (&["p", "--address", "0.0.0.0"], "'0.0.0.0' for 'address'"),
            (&["p", "--netmask", "255.0.255.0"], "'255.0.255.0' for 'netmask'"),
            (&["p", "--netmask", "33"], "'33' for 'netmask'"),
            (&["p", "--mac-addr", "01:00:00:00:00:01"], "'01:00:00:00:00:01' for 'mac-addr'"),
            (&["p", "--mac-addr", "zz:00:00:00:00:01"], "'zz:00:00:00:00:01' for 'mac-addr'"),
            (&["p", "--fd", "-3"], "'-3' for 'fd'"),
            (&["p", "--search", "a..b"], "'a..b' for 'search'"),
            (&["p", "--socket"], "'--socket' needs a value"),
            (&["p", "-4=x"], "'-='"),
            (&["p", "--foreground=1"], "takes no value"),
            (&["p", "stray"], "'stray'"),
        ];
        for (args, expect) in cases {
            let err = Config::new().parse_args(args).unwrap_err().to_string();
            assert!(err.contains(expect), "{args:?}: {err}");
        }
    }

    #[test]
    fn attachment_must_be_exactly_one() {
        let c = Config::new();
        assert!(c.validate().unwrap_err().0.contains("no guest attachment"));
        let mut c = Config::new();
        c.set("socket", "/tmp/a").unwrap();
        c.set("frames", "").unwrap();
        assert!(c.validate().unwrap_err().0.contains("more than one"));
    }

    #[test]
    fn dns_and_search_accumulate() {
        let mut c = Config::new();
        c.parse_args(&["p", "-D", "1.1.1.1", "-D", "2001:db8::53", "-S", "example.org lab.example"]).unwrap();
        assert_eq!(c.dns.len(), 2);
        assert_eq!(c.search, vec!["example.org", "lab.example"]);
        c.set("dns", "none").unwrap();
        assert!(c.dns.is_empty() && c.dns_none);
    }
}
