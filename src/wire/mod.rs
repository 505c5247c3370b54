//! (skeleton)
pub mod dhcp;
