//! ICMP echo flows (in progress).
