//! The dispatcher thread: the loop around the library's `Engine`, the one owner of room state
//! and of every client's outbox. It takes commands from connection threads over one bounded
//! crossbeam channel, applies up to `BATCH` of them per wake-up, writes each touched client
//! once, hands answers back over their one-shot channels, and ticks the clock every `SWEEP`.

use std::time::Instant;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::engine::{Answer, Command, Engine, BATCH, RETRY, SHUTDOWN_GRACE, SWEEP};
use crate::socket::TcpSocket;

/// What connection threads (and the signal thread) send the dispatcher.
pub type Cmd = Command<TcpSocket, Sender<Answer>>;

/// Runs until `Command::Shutdown` (or until every sender is gone).
pub fn run(mut engine: Engine<TcpSocket>, rx: Receiver<Cmd>) {
    let mut next_sweep = Instant::now() + SWEEP;
    loop {
        let wait = if engine.has_stalled() { RETRY } else { SWEEP };
        let first = rx.recv_timeout(wait);
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
        engine.flush();
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
    engine.flush();
    while engine.has_stalled() && Instant::now() < deadline {
        std::thread::sleep(RETRY);
        engine.flush();
    }
}
