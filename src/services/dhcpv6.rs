//! DHCPv6 (in progress).
