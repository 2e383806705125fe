//! The outboxes' `Socket` for a real client: the write half of its `TcpStream`, written with
//! non-blocking sends that never raise SIGPIPE, so the dispatcher never waits on a client.

use std::io;
use std::net::{Shutdown, TcpStream};

use socket2::SockRef;

use crate::outbox::Socket;

/// A client's `TcpStream` as the dispatcher writes it.
pub struct TcpSocket(pub TcpStream);

impl Socket for TcpSocket {
    fn send_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        SockRef::from(&self.0).send_with_flags(bytes, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    }

    fn shutdown(&mut self, how: Shutdown) {
        let _ = self.0.shutdown(how);
    }
}
