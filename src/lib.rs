//! messenger's protocol as a library: settings, the edge parsers (Messenger, Kurento, and just
//! enough of Thunder's Controller) and their byte caps, room state, the `engine` that carries
//! out every command on it, the clients' outboxes, origins and ACLs, wildcard matching, room
//! and access tokens, the rate limiter, the wire format and the wording of the operator's log
//! lines. Nothing here starts
//! a thread, owns a channel or reads the clock (time is passed in; sockets are a trait), so the
//! binary (`src/main.rs`, which describes the threads), the tests and the fuzz targets in
//! `fuzz/` run the same code, the tests from memory.
#![forbid(unsafe_code)]

pub mod access_token;
pub mod acl;
pub mod caps;
pub mod config;
pub mod controller;
pub mod engine;
pub mod error;
pub mod frame_scan;
pub mod idmap;
pub mod kurento;
pub mod logline;
pub mod outbox;
pub mod ratelimit;
pub mod request;
pub mod room_token;
pub mod rooms;
mod slab;
pub mod upstream;
pub mod wildcard;
pub mod wire;
