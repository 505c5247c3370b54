//! Host network discovery (placeholder until the netlink work lands: it
//! finds nothing, so addresses must be configured).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

pub struct HostV4 { pub ifindex: u32, pub ifname: String, pub addr: Ipv4Addr, pub prefix_len: u8, pub gateway: Option<Ipv4Addr> }
pub struct HostV6 { pub ifindex: u32, pub ifname: String, pub addr: Ipv6Addr, pub prefix_len: u8, pub gateway: Option<Ipv6Addr>, pub link_local: Option<Ipv6Addr> }
#[derive(Default)]
pub struct HostNet { pub v4: Option<HostV4>, pub v6: Option<HostV6>, pub mtu: Option<u32> }
pub fn discover(_interface: Option<&str>) -> io::Result<HostNet> { Ok(HostNet::default()) }
#[derive(Default)]
pub struct Resolv { pub nameservers: Vec<IpAddr>, pub search: Vec<String> }
pub fn read_resolv_conf(_path: &Path) -> Resolv { Resolv::default() }
pub struct NsNetConfig { pub ifname: String, pub mtu: Option<u32>, pub addr4: Option<(Ipv4Addr, u8)>, pub gw4: Option<Ipv4Addr>, pub addr6: Option<(Ipv6Addr, u8)>, pub gw6: Option<Ipv6Addr> }
pub fn configure_link(_cfg: &NsNetConfig) -> io::Result<()> { Err(io::Error::other("not yet")) }
