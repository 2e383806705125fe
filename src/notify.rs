//! systemd's readiness protocol (sd_notify) without libsystemd: datagrams such as `READY=1`
//! sent to the socket named by `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket),
//! and the watchdog interval from `$WATCHDOG_USEC`. The socket is non-blocking: a message
//! that cannot go at once is dropped, so the dispatcher never waits on systemd.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

/// Where to tell systemd how the service is doing. Absent outside systemd (`Type=notify`).
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The notifier `$NOTIFY_SOCKET` asks for, if any.
    pub fn from_env() -> Option<Notifier> {
        let name = std::env::var_os("NOTIFY_SOCKET")?;
        let name = name.to_str()?;
        let addr = match name.strip_prefix('@') {
            Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name.as_bytes()),
            None if name.starts_with('/') => SocketAddr::from_pathname(name),
            None => return None,
        };
        let socket = UnixDatagram::unbound().ok()?;
        socket.set_nonblocking(true).ok()?;
        match addr {
            Ok(addr) => Some(Notifier { socket, addr }),
            Err(e) => {
                log::warn!("NOTIFY_SOCKET {name:?} unusable: {e}");
                None
            }
        }
    }

    /// Sends one state (`READY=1`, `STOPPING=1`, `WATCHDOG=1`, `STATUS=...`); never blocks.
    pub fn send(&self, state: &str) {
        if let Err(e) = self.socket.send_to_addr(state.as_bytes(), &self.addr) {
            log::debug!("sd_notify {state}: {e}");
        }
    }
}

/// How often to send `WATCHDOG=1`: half of `$WATCHDOG_USEC`, when it is set for this process
/// (`$WATCHDOG_PID`, if present, must be ours).
pub fn watchdog_interval() -> Option<Duration> {
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}
