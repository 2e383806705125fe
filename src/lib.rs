//! messenger's pure parts as a library: settings, the edge parsers (Messenger and Kurento),
//! room state, origins and ACLs, access tokens, the rate limiter and the wire format. None of
//! them touches a socket, a thread or the clock, so the binary (`src/main.rs`, which describes
//! the threads) and the fuzz targets in `fuzz/` use the same code.
#![forbid(unsafe_code)]

pub mod access_token;
pub mod acl;
pub mod config;
pub mod error;
pub mod idmap;
pub mod kurento;
pub mod ratelimit;
pub mod request;
pub mod room_token;
pub mod rooms;
pub mod wire;
