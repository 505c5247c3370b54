//! passt-rs: user-mode networking for virtual machines and network
//! namespaces, as an embeddable library.
//!
//! A guest sends Ethernet frames; we terminate its traffic into ordinary,
//! unprivileged host sockets and translate the answers back into frames:
//!
//! ```text
//! guest frames --(backend, batched reads)--> wire parsers (zero-copy views)
//!    --> services: ARP, DHCPv4, NDP/RA, DHCPv6   (answered locally)
//!    --> flows: TCP / UDP / ICMP echo  --> host sockets
//! host sockets --(epoll events)--> flows --> frame builders
//!    --> batched writes to the backend
//! ```
//!
//! Layers, each using only those below it: `wire` knows bytes; `services`
//! and `flow` know protocols; `engine`, `backend` and `sys` make syscalls;
//! `ffi` knows C. `unsafe` lives only in `ffi` and `sys`.
//!
//! # Embedding
//!
//! Rust programs use [`api::Passt`] (see [`api`] for the loop, in-process
//! frames with back-pressure, events, threads and logging); C programs use
//! `include/passt.h`, generated from [`ffi`], a thin layer over [`api`]
//! that adds the panic boundary.
//!
//! # ABI and API stability
//!
//! The soname `libpasst.so.0` changes only for an incompatible change.
//! Within it, functions, configuration keys, enum values and trailing
//! fields of the size-versioned structs (`passt_stats`, `passt_event`) are
//! only ever added; nothing is removed, renamed, renumbered or reordered.
//! The same holds for the items of [`api`]; the other modules are public
//! for tests and tools, without promises. `docs/abi-policy.md` has the
//! details.

#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

pub mod api;
pub mod backend;
pub mod config;
pub mod engine;
pub mod ffi;
pub mod flow;
pub mod fwd;
pub mod guestnet;
pub mod hostnet;
pub mod log;
pub mod pcap;
pub mod services;
pub mod stats;
pub mod sys;
pub mod time;
pub mod token;
pub mod tx;
pub mod wire;

pub use api::Passt;
pub use config::Config;
pub use time::Instant;
