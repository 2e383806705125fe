//! Sends held on a connection's thread until its socket is read again, so the run of `send`s
//! that one read brought reaches the dispatcher as one command (`Command::Sends`) instead of
//! one each. What that saves per message: a place in the inbox taken and given back across
//! threads, the message's block allocated on the reader's thread and freed on the
//! dispatcher's (a miss in both threads' malloc caches), and the dispatcher waking for it.
//!
//! The reader (`reader.rs`) hands every command it makes to `Held::hand`, and calls
//! `Held::release` before anything it sends on its own and before each read from the socket,
//! so nothing is held while the reader waits, and everything reaches the dispatcher in the
//! order the client sent it. A single `send` is held as the `Command::Send` it is, unchanged;
//! a run is held within `HELD_BYTES` of messages and `HELD_SENDS` sends, so a command in the
//! inbox never holds more than one message of `max_message_size` could.

use std::borrow::Cow;

use super::Command;
use crate::request::Id;
use crate::room_token::RoomToken;
use crate::rooms::ConnId;

/// The message bytes one `Command::Sends` carries at most (a run that would pass it goes as
/// two): what one read brings in a burst (`read_ahead::READ_AHEAD`).
pub const HELD_BYTES: usize = 8 * 1024;
/// The sends one `Command::Sends` carries at most.
pub const HELD_SENDS: usize = 128;

/// A run of `send`s to room tokens from one connection, in order: the messages one after the
/// other in one buffer, each send's id, token and where its message ends in another.
#[derive(Default)]
pub struct Sends {
    text: String,
    items: Vec<Item>,
}

struct Item {
    id: Option<Id>,
    token: RoomToken,
    /// Where the message ends in `text` (it starts where the one before ends).
    end: usize,
    /// As `Method::Send`'s.
    plain: bool,
}

/// One send of a run, as the dispatcher carries it out.
pub struct Send<'a> {
    pub id: Option<Id>,
    pub token: RoomToken,
    pub message: &'a str,
    pub plain: bool,
}

impl Sends {
    fn push(&mut self, id: Option<Id>, token: RoomToken, message: &str, plain: bool) {
        self.text.push_str(message);
        let end = self.text.len();
        self.items.push(Item {
            id,
            token,
            end,
            plain,
        });
    }

    /// Whether one more send of `message_len` bytes fits.
    fn fits(&self, message_len: usize) -> bool {
        self.items.len() < HELD_SENDS && self.text.len() + message_len <= HELD_BYTES
    }

    /// How many sends the run holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The sends, in order, each once.
    pub fn each(self, mut f: impl FnMut(Send<'_>)) {
        let mut start = 0;
        for item in self.items {
            f(Send {
                id: item.id,
                token: item.token,
                message: self.text.get(start..item.end).unwrap_or_default(),
                plain: item.plain,
            });
            start = item.end;
        }
    }
}

/// What a reader holds: nothing, one `Command::Send`, or a `Command::Sends`.
pub struct Held<S, R>(Option<Command<S, R>>);

impl<S, R> Default for Held<S, R> {
    fn default() -> Self {
        Held(None)
    }
}

impl<S, R> Held<S, R> {
    /// Takes `cmd` from the reader: a `send` to a room token is held (what is held already
    /// goes first if the two do not fit together), anything else goes to `send` at once,
    /// after what is held. Fails with `send`'s first failure.
    #[inline(never)] // its frame stays off the parse path's (see `connection.rs`)
    pub fn hand<E>(
        &mut self,
        cmd: Command<S, R>,
        mut send: impl FnMut(Command<S, R>) -> Result<(), E>,
    ) -> Result<(), E> {
        let Command::Send {
            conn,
            id,
            token,
            message,
            plain,
        } = cmd
        else {
            self.release(&mut send)?;
            return send(cmd);
        };
        self.hold(
            conn,
            id,
            token,
            Cow::Owned(message.into_string()),
            plain,
            send,
        )
    }

    /// `hand` of the `send` to `token` with `id` whose message is `message` (`plain`), read
    /// straight from the frame (`request::send_to_token`): copied into the run, with no block
    /// of its own unless it is held alone.
    #[inline(never)]
    pub fn hand_send<E>(
        &mut self,
        conn: ConnId,
        id: Id,
        token: RoomToken,
        message: &str,
        send: impl FnMut(Command<S, R>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.hold(conn, Some(id), token, Cow::Borrowed(message), true, send)
    }

    fn hold<E>(
        &mut self,
        conn: ConnId,
        id: Option<Id>,
        token: RoomToken,
        message: Cow<'_, str>,
        plain: bool,
        mut send: impl FnMut(Command<S, R>) -> Result<(), E>,
    ) -> Result<(), E> {
        let text = &*message;
        match &mut self.0 {
            Some(Command::Sends { sends, .. }) if sends.fits(text.len()) => {
                sends.push(id, token, text, plain);
                return Ok(());
            }
            Some(Command::Send {
                message: first,
                id: first_id,
                token: first_token,
                plain: first_plain,
                ..
            }) if first.len() + text.len() <= HELD_BYTES => {
                let mut sends = Sends {
                    text: String::with_capacity(run_capacity(first.len() + text.len())),
                    items: Vec::with_capacity(16),
                };
                sends.push(first_id.take(), *first_token, first, *first_plain);
                sends.push(id, token, text, plain);
                self.0 = Some(Command::Sends { conn, sends });
                return Ok(());
            }
            Some(_) => self.release(&mut send)?,
            None => {}
        }
        self.0 = Some(Command::Send {
            conn,
            id,
            token,
            // An owned message came as a `Box<str>`: no copy back.
            message: message.into_owned().into_boxed_str(),
            plain,
        });
        Ok(())
    }

    /// Hands what is held, if anything, to `send`.
    pub fn release<E>(
        &mut self,
        mut send: impl FnMut(Command<S, R>) -> Result<(), E>,
    ) -> Result<(), E> {
        match self.0.take() {
            Some(cmd) => send(cmd),
            None => Ok(()),
        }
    }

    /// The connection whose `send`s are held, if any.
    pub fn conn(&self) -> Option<ConnId> {
        match &self.0 {
            Some(Command::Send { conn, .. } | Command::Sends { conn, .. }) => Some(*conn),
            _ => None,
        }
    }
}

/// The text buffer a run starts with, for its first two messages of `n` bytes: room for a few
/// more of their size, so a burst's run grows its buffer once or twice, not at every send.
fn run_capacity(n: usize) -> usize {
    (n * 8).clamp(512, HELD_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    type Cmd = Command<(), ()>;

    fn send(id: u32, token: u8, message: &str) -> Cmd {
        Command::Send {
            conn: 7,
            id: Some(Id::new(&id.to_string())),
            token: token_of(token),
            message: message.into(),
            plain: true,
        }
    }

    fn token_of(n: u8) -> RoomToken {
        RoomToken::parse(&format!("{n:02x}").repeat(10)).unwrap()
    }

    /// The number `token_of` made `token` from.
    fn number(token: RoomToken) -> u8 {
        u8::from_str_radix(&token.to_string()[..2], 16).unwrap()
    }

    /// Hands `cmds` to a holder, then releases it; what reached the dispatcher, each send as
    /// (command number, id, token's first byte, message).
    fn through(cmds: Vec<Cmd>) -> Vec<(usize, String, u8, String)> {
        let mut sent: Vec<Cmd> = Vec::new();
        let mut held = Held::default();
        for cmd in cmds {
            held.hand(cmd, |c| {
                sent.push(c);
                Ok::<(), ()>(())
            })
            .unwrap();
        }
        held.release(|c| {
            sent.push(c);
            Ok::<(), ()>(())
        })
        .unwrap();
        assert_eq!(held.conn(), None);
        let mut out = Vec::new();
        for (n, cmd) in sent.into_iter().enumerate() {
            match cmd {
                Command::Send {
                    id, token, message, ..
                } => out.push((n, id_text(id), number(token), message.into())),
                Command::Sends { conn, sends } => {
                    assert_eq!(conn, 7);
                    assert!(sends.len() >= 2, "a run of one goes as a Send");
                    sends.each(|s| out.push((n, id_text(s.id), number(s.token), s.message.into())));
                }
                Command::Tick => out.push((n, "tick".into(), 0, String::new())),
                _ => panic!("unexpected command"),
            }
        }
        out
    }

    fn id_text(id: Option<Id>) -> String {
        id.map_or("none".into(), |id| id.as_str().to_owned())
    }

    #[test]
    fn a_run_of_sends_goes_as_one_command_in_order() {
        let out = through(vec![send(1, 1, "a"), send(2, 2, "bc"), send(3, 1, "")]);
        let expect = [(0, "1", 1, "a"), (0, "2", 2, "bc"), (0, "3", 1, "")];
        assert_eq!(out.len(), 3);
        for (got, want) in out.iter().zip(expect) {
            assert_eq!((got.0, got.1.as_str(), got.2, got.3.as_str()), want);
        }
    }

    #[test]
    fn a_single_send_goes_unchanged_and_anything_else_goes_after_what_is_held() {
        let out = through(vec![send(1, 1, "a"), Command::Tick, send(2, 1, "b")]);
        let ids: Vec<(usize, &str)> = out.iter().map(|o| (o.0, o.1.as_str())).collect();
        assert_eq!(ids, [(0, "1"), (1, "tick"), (2, "2")]);
    }

    #[test]
    fn a_run_keeps_within_its_bytes_and_its_count() {
        let big = "x".repeat(HELD_BYTES / 2 + 1);
        let out = through(vec![send(1, 1, &big), send(2, 1, &big), send(3, 1, "c")]);
        let commands: Vec<usize> = out.iter().map(|o| o.0).collect();
        assert_eq!(
            commands,
            [0, 1, 1],
            "the second half-size message starts a new run"
        );
        assert_eq!(out[1].3.len() + out[2].3.len(), big.len() + 1);

        let many: Vec<Cmd> = (0..HELD_SENDS as u32 + 1)
            .map(|i| send(i, 1, "m"))
            .collect();
        let out = through(many);
        assert_eq!(out.iter().filter(|o| o.0 == 0).count(), HELD_SENDS);
        assert_eq!(out.last().map(|o| (o.0, o.1.as_str())), Some((1, "128")));

        let whole = "y".repeat(HELD_BYTES + 1);
        let out = through(vec![send(1, 1, "a"), send(2, 1, &whole), send(3, 1, "b")]);
        let commands: Vec<usize> = out.iter().map(|o| o.0).collect();
        assert_eq!(commands, [0, 1, 2], "a message over the bound goes alone");
    }

    #[test]
    fn a_failed_send_is_reported() {
        let mut held: Held<(), ()> = Held::default();
        held.hand(send(1, 1, "a"), |_| Err("gone")).unwrap();
        assert_eq!(held.hand(Command::Tick, |_| Err("gone")), Err("gone"));
    }
}
