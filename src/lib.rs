//! messenger's pure parts as a library: settings, the edge parsers (Messenger and Kurento) and
//! their byte caps, room state, origins and ACLs, wildcard matching, access tokens, the rate
//! limiter, the wire format and the wording of the operator's log lines. None of them touches
//! a socket, a thread or the clock, so the binary (`src/main.rs`, which describes the threads)
//! and the fuzz targets in `fuzz/` use the same code.
#![forbid(unsafe_code)]

pub mod access;
pub mod acl;
pub mod caps;
pub mod config;
pub mod error;
pub mod idmap;
pub mod kurento;
pub mod logline;
pub mod ratelimit;
pub mod request;
pub mod rooms;
pub mod token;
pub mod wildcard;
pub mod wire;
