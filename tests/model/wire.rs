//! The harness's side of the wire: fake sockets that take bytes in pieces (and sometimes none
//! at all, as a full socket does), the decoding of the server's frames, and the comparison of
//! what each client got with what the model says it must get.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::net::Shutdown;
use std::rc::Rc;

use messenger::outbox::Socket;
use serde_json::Value;

use super::reference::Want;

/// What the server wrote to one client, and what it did to the socket.
#[derive(Default)]
pub struct Wire {
    pub bytes: Vec<u8>,
    /// Bytes already decoded.
    pub read: usize,
    pub shut_write: bool,
    /// Only a cut-off shuts the read side alone; the model never expects one.
    pub shut_read: bool,
    pub shut_both: bool,
    /// The server wrote after shutting the socket down.
    pub after_shutdown: bool,
    calls: usize,
}

/// A client socket in memory: each send takes at most `piece` bytes, and every
/// `stall_every`-th send takes none (`WouldBlock`); 0 never stalls.
pub struct FakeSocket {
    pub wire: Rc<RefCell<Wire>>,
    pub piece: usize,
    pub stall_every: usize,
}

impl Socket for FakeSocket {
    fn send_now(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut wire = self.wire.borrow_mut();
        if wire.shut_write || wire.shut_both {
            wire.after_shutdown = true;
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        wire.calls += 1;
        if self.stall_every > 0 && wire.calls % self.stall_every == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = bytes.len().min(self.piece);
        wire.bytes.extend_from_slice(&bytes[..n]);
        Ok(n)
    }

    fn shutdown(&mut self, how: Shutdown) {
        let mut wire = self.wire.borrow_mut();
        match how {
            Shutdown::Write => wire.shut_write = true,
            Shutdown::Read => wire.shut_read = true,
            Shutdown::Both => wire.shut_both = true,
        }
    }
}

/// Decodes the complete server frames written since the last call. A frame cut in half once
/// everything has been written is an error, as is any frame a server must not send.
pub fn decode(wire: &mut Wire) -> Result<Vec<Want>, String> {
    let mut out = Vec::new();
    while wire.read < wire.bytes.len() {
        let rest = &wire.bytes[wire.read..];
        let (header, len) = match rest.get(1).map(|b| b & 0x7f) {
            Some(126) if rest.len() >= 4 => (4, u16::from_be_bytes([rest[2], rest[3]]) as usize),
            Some(127) if rest.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&rest[2..10]);
                (10, u64::from_be_bytes(n) as usize)
            }
            Some(n) if n < 126 => (2, n as usize),
            _ => return Err(format!("half a frame header: {rest:?}")),
        };
        if rest[1] & 0x80 != 0 {
            return Err("a server frame is masked".into());
        }
        let Some(payload) = rest.get(header..header + len) else {
            return Err(format!(
                "half a frame: {} of {len} bytes",
                rest.len() - header
            ));
        };
        out.push(match rest[0] {
            0x81 => text(payload)?,
            0x88 if payload.len() >= 2 => Want::Close(u16::from_be_bytes([payload[0], payload[1]])),
            0x8A => Want::Pong,
            other => return Err(format!("unexpected frame type {other:#x}")),
        });
        wire.read += header + len;
    }
    Ok(out)
}

/// A text frame: JSON, with an error's `data` (free text, not part of the model) removed.
fn text(payload: &[u8]) -> Result<Want, String> {
    let text = std::str::from_utf8(payload).map_err(|e| format!("frame not UTF-8: {e}"))?;
    let value: Value =
        serde_json::from_str(text).map_err(|e| format!("frame not JSON ({e}): {text}"))?;
    Ok(Want::Json(without_data(value)))
}

/// The value with an error object's `data` removed.
pub fn without_data(mut value: Value) -> Value {
    if let Some(error) = value.get_mut("error").and_then(Value::as_object_mut) {
        error.remove("data");
    }
    value
}

/// Values the model could not know, as the engine showed them: room tokens by membership,
/// session ids by connection.
#[derive(Default)]
pub struct Bindings {
    pub tokens: BTreeMap<u64, String>,
    pub sessions: BTreeMap<u64, String>,
}

/// Whether `got` is `want`, where a placeholder in `want` matches a well-formed value,
/// which is then recorded (the same placeholder must always show the same value).
pub fn matches(want: &Value, got: &Value, binds: &mut Bindings) -> bool {
    match (want, got) {
        (Value::String(w), Value::String(g)) if w.starts_with('\u{1}') => {
            let (kind, key) = w[1..].split_once(':').expect("a placeholder");
            let key: u64 = key.parse().expect("a placeholder's key");
            let (map, digits) = match kind {
                "token" => (&mut binds.tokens, 20),
                _ => (&mut binds.sessions, 32),
            };
            let hex = g.len() == digits
                && g.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            hex && map.entry(key).or_insert_with(|| g.clone()) == g
        }
        (Value::Object(w), Value::Object(g)) => {
            w.len() == g.len()
                && w.iter()
                    .all(|(k, v)| g.get(k).is_some_and(|gv| matches(v, gv, binds)))
        }
        (Value::Array(w), Value::Array(g)) => {
            w.len() == g.len() && w.iter().zip(g).all(|(w, g)| matches(w, g, binds))
        }
        _ => want == got,
    }
}

/// The frame that ends a group, if it is one: a response (it has an `id`), a close or a pong.
fn terminal(want: &Want) -> bool {
    match want {
        Want::Json(v) => v.get("id").is_some(),
        Want::Close(_) | Want::Pong => true,
    }
}

fn canonical(want: &Want) -> String {
    format!("{want:?}")
}

/// Checks one client's frames against the model's groups (one group per action, in order):
/// each group's events in any order (one action's events to one client have no order among
/// themselves), its reply or close last.
pub fn compare(groups: &[Vec<Want>], got: &[Want], binds: &mut Bindings) -> Result<(), String> {
    let wanted: usize = groups.iter().map(Vec::len).sum();
    if wanted != got.len() {
        return Err(format!(
            "{} frames, the model wants {wanted}: got {got:#?}\nthe model wants {groups:#?}",
            got.len()
        ));
    }
    let mut at = 0;
    for (n, group) in groups.iter().enumerate() {
        let slice = &got[at..at + group.len()];
        at += group.len();
        let (events, last) = match group.last() {
            Some(last) if terminal(last) => (&group[..group.len() - 1], Some(last)),
            _ => (&group[..], None),
        };
        if let Some(last) = last {
            let got_last = &slice[slice.len() - 1];
            let same = match (last, got_last) {
                (Want::Json(w), Want::Json(g)) => matches(w, g, binds),
                (w, g) => w == g,
            };
            if !same {
                return Err(format!(
                    "action {n} of the batch: last frame {got_last:?}, the model wants {last:?}"
                ));
            }
        }
        let mut want: Vec<String> = events.iter().map(canonical).collect();
        let mut have: Vec<String> = slice[..events.len()].iter().map(canonical).collect();
        want.sort();
        have.sort();
        if want != have {
            return Err(format!(
                "action {n} of the batch: events {have:#?}, the model wants {want:#?}"
            ));
        }
    }
    Ok(())
}
