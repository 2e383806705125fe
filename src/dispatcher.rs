//! The dispatcher thread: the loop around the library's `Engine`, the one owner of room state
//! and of every client's outbox. It takes commands from connection threads over one bounded
//! crossbeam channel, applies up to `BATCH` of them per wake-up, writes each touched client
//! once, hands answers back over their one-shot channels, ticks the clock every `SWEEP`, and
//! beats systemd's watchdog on time. Between batches it lets the engine `work` on memberships
//! ending many at once, a bounded amount per turn, and does not wait while some remain.
//! Nothing here blocks but the wait for the next command, which ends at the earliest of: the
//! next stalled socket's retry (`Engine::next_retry`), the next sweep, the next heartbeat. Sockets and the notify datagram are non-blocking, and log
//! lines only go into the logger's queue.

use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender};

use crate::inbox::Receiver;

use crate::engine::{Answer, Command, Engine, Held, BATCH, SHUTDOWN_GRACE, SWEEP};
use crate::socket::TcpSocket;

/// What connection threads (and the signal thread) send the dispatcher.
pub type Cmd = Command<TcpSocket, Sender<Answer>>;
/// What a connection thread holds of them (`engine::Held`).
pub type HeldCmds = Held<TcpSocket, Sender<Answer>>;

/// Something the loop does at least every `every`, busy or idle: systemd's watchdog ping, so a
/// wedged dispatcher gets the service restarted.
pub struct Heartbeat {
    pub every: Duration,
    pub beat: Box<dyn FnMut() + Send>,
}

/// Runs until `Command::Shutdown` (or until every sender is gone), beating `heartbeat` on
/// time.
pub fn run(mut engine: Engine<TcpSocket>, rx: Receiver<Cmd>, mut heartbeat: Option<Heartbeat>) {
    let mut next_sweep = Instant::now() + SWEEP;
    let mut next_beat = Instant::now() + heartbeat.as_ref().map_or(SWEEP, |h| h.every);
    let mut busy = false;
    loop {
        let now = Instant::now();
        if let Some(heart) = &mut heartbeat {
            if now >= next_beat {
                (heart.beat)();
                next_beat = now + heart.every;
            }
        }
        let mut until = next_sweep;
        if heartbeat.is_some() {
            until = until.min(next_beat);
        }
        if let Some(retry) = engine.next_retry() {
            until = until.min(retry);
        }
        if busy {
            until = now;
        }
        let first = rx.recv_timeout(until.saturating_duration_since(now));
        let now = Instant::now();
        let mut stop = match first {
            Ok(cmd) => apply(&mut engine, cmd, now),
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        for _ in 1..BATCH {
            if stop {
                break;
            }
            let Ok(cmd) = rx.try_recv() else { break };
            stop = apply(&mut engine, cmd, now);
        }
        busy = engine.work(now);
        engine.flush(now);
        if now >= next_sweep {
            engine.apply::<()>(Command::Tick, now);
            next_sweep = now + SWEEP;
        }
        if stop {
            break;
        }
    }
    goodbye(&mut engine);
}

/// Applies one command and hands its answer back; true when the server is stopping.
fn apply(engine: &mut Engine<TcpSocket>, cmd: Cmd, now: Instant) -> bool {
    let stop = matches!(cmd, Command::Shutdown);
    if let Some((reply, answer)) = engine.apply(cmd, now) {
        let _ = reply.send(answer);
    }
    stop
}

/// Writes the close frames queued for every client for up to `SHUTDOWN_GRACE`.
fn goodbye(engine: &mut Engine<TcpSocket>) {
    engine.apply::<()>(Command::Shutdown, Instant::now());
    let deadline = Instant::now() + SHUTDOWN_GRACE;
    engine.flush(Instant::now());
    while let Some(retry) = engine.next_retry().filter(|at| *at < deadline) {
        std::thread::sleep(retry.saturating_duration_since(Instant::now()));
        engine.flush(Instant::now());
    }
}
