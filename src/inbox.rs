//! The dispatcher's inbox: a channel that holds at most `INBOX` commands, whose memory grows
//! with what is queued instead of being allocated up front. A crossbeam `bounded` channel
//! allocates (and writes) every slot when it is made, a command and a stamp each: 72 KiB of a
//! fresh server's memory. An `unbounded` one allocates blocks of 31 slots as commands queue
//! and frees them as they are taken. A count of queued commands keeps the bound: a sender that
//! finds `INBOX` queued waits until the dispatcher takes one (the back-pressure on a flooding
//! reader), and fails once the dispatcher is gone.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, SendError, TryRecvError};

/// How long a waiting sender sleeps before it looks at the count again on its own: a
/// safeguard only, every command taken wakes a waiter.
const RECHECK: Duration = Duration::from_millis(50);

/// The count both ends share, and where full senders wait.
struct Room {
    capacity: usize,
    /// Commands sent and not yet taken (a sender counts its command before sending it).
    queued: AtomicUsize,
    /// Senders waiting for room.
    waiting: AtomicUsize,
    /// True once the receiver is gone.
    closed: Mutex<bool>,
    freed: Condvar,
}

impl Room {
    fn closed(&self) -> MutexGuard<'_, bool> {
        self.closed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sending end, one per thread that sends (cloned).
pub struct Sender<T> {
    tx: crossbeam_channel::Sender<T>,
    room: Arc<Room>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Sender {
            tx: self.tx.clone(),
            room: self.room.clone(),
        }
    }
}

/// The receiving end: the dispatcher's.
pub struct Receiver<T> {
    rx: crossbeam_channel::Receiver<T>,
    room: Arc<Room>,
}

/// A channel that holds at most `capacity` messages.
pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let room = Arc::new(Room {
        capacity,
        queued: AtomicUsize::new(0),
        waiting: AtomicUsize::new(0),
        closed: Mutex::new(false),
        freed: Condvar::new(),
    });
    let sender = Sender {
        tx,
        room: room.clone(),
    };
    (sender, Receiver { rx, room })
}

impl<T> Sender<T> {
    /// Queues `msg`, waiting while the channel is full; fails when the receiver is gone.
    pub fn send(&self, msg: T) -> Result<(), SendError<T>> {
        let room = &*self.room;
        if room.queued.fetch_add(1, SeqCst) >= room.capacity {
            room.queued.fetch_sub(1, SeqCst);
            if !self.wait_for_room() {
                return Err(SendError(msg));
            }
        }
        self.tx.send(msg).inspect_err(|_| {
            room.queued.fetch_sub(1, SeqCst);
        })
    }

    /// Waits until this sender has counted a place for its message (true), or the receiver
    /// is gone (false). Out of line: only a flood gets here.
    #[cold]
    #[inline(never)]
    fn wait_for_room(&self) -> bool {
        let room = &*self.room;
        let mut closed = room.closed();
        room.waiting.fetch_add(1, SeqCst);
        let counted = loop {
            if *closed {
                break false;
            }
            if room.queued.fetch_add(1, SeqCst) < room.capacity {
                break true;
            }
            room.queued.fetch_sub(1, SeqCst);
            closed = match room.freed.wait_timeout(closed, RECHECK) {
                Ok((guard, _)) => guard,
                Err(p) => p.into_inner().0,
            };
        };
        room.waiting.fetch_sub(1, SeqCst);
        counted
    }
}

impl<T> Receiver<T> {
    /// The next message, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.rx.recv_timeout(timeout).inspect(|_| self.taken())
    }

    /// The next message if one is queued.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.rx.try_recv().inspect(|_| self.taken())
    }

    /// Every message until all senders are gone.
    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(|| self.rx.recv().ok().inspect(|_| self.taken()))
    }

    /// Frees the place of a message taken, and wakes a sender waiting for it. A waiter counts
    /// itself before it looks at `queued`, and this looks at `waiting` after it lowers
    /// `queued` (both `SeqCst`): either the waiter sees the place, or this sees the waiter.
    fn taken(&self) {
        let room = &*self.room;
        room.queued.fetch_sub(1, SeqCst);
        if room.waiting.load(SeqCst) > 0 {
            let _closed = room.closed();
            room.freed.notify_one();
        }
    }
}

impl<T> Drop for Receiver<T> {
    /// Wakes every waiting sender, to fail.
    fn drop(&mut self) {
        *self.room.closed() = true;
        self.room.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    /// Waits up to ten seconds for `done`.
    fn eventually(done: impl Fn() -> bool) -> bool {
        for _ in 0..1000 {
            if done() {
                return true;
            }
            thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn a_sender_waits_while_full_and_goes_on_when_one_is_taken() {
        let (tx, rx) = bounded::<usize>(4);
        for i in 0..4 {
            tx.send(i).unwrap();
        }
        let sender = {
            let tx = tx.clone();
            thread::spawn(move || tx.send(4))
        };
        assert!(eventually(|| rx.room.waiting.load(SeqCst) == 1));
        thread::sleep(Duration::from_millis(100));
        assert!(!sender.is_finished(), "the fifth send waits");
        assert_eq!(rx.room.queued.load(SeqCst), 4);
        assert_eq!(rx.try_recv(), Ok(0));
        sender.join().unwrap().unwrap();
        let rest: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(rest, [1, 2, 3, 4]);
        assert_eq!(rx.room.queued.load(SeqCst), 0);
    }

    #[test]
    fn a_waiting_sender_fails_when_the_receiver_goes() {
        let (tx, rx) = bounded::<usize>(1);
        tx.send(0).unwrap();
        let sender = thread::spawn(move || tx.send(1));
        assert!(eventually(|| rx.room.waiting.load(SeqCst) == 1));
        drop(rx);
        assert_eq!(sender.join().unwrap(), Err(SendError(1)));
    }

    #[test]
    fn the_receiver_sees_every_sender_gone() {
        let (tx, rx) = bounded::<usize>(2);
        tx.send(7).unwrap();
        drop(tx);
        assert_eq!(rx.try_recv(), Ok(7));
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(5)),
            Err(RecvTimeoutError::Disconnected)
        );
    }

    #[test]
    fn many_senders_over_a_small_bound_deliver_everything() {
        let (tx, rx) = bounded::<usize>(3);
        let senders: Vec<_> = (0..4)
            .map(|k| {
                let tx = tx.clone();
                thread::spawn(move || (0..500).for_each(|i| tx.send(k * 1000 + i).unwrap()))
            })
            .collect();
        drop(tx);
        let mut got = Vec::new();
        while let Ok(n) = rx.recv_timeout(Duration::from_secs(10)) {
            assert!(rx.room.queued.load(SeqCst) <= 3 + 4, "the bound holds");
            got.push(n);
        }
        senders.into_iter().for_each(|s| s.join().unwrap());
        assert_eq!(got.len(), 2000);
        for k in 0..4 {
            let mine: Vec<_> = got.iter().filter(|n| **n / 1000 == k).collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "each sender's order kept"
            );
        }
    }
}
