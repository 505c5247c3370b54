//! (skeleton)
pub mod dhcpv6;
pub mod ndp;
