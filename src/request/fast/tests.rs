//! The quick paths against the full parser: whatever the scanner answers, the full parser
//! answers the same, and whatever the canonical match (`usual.rs`) answers, the scanner answers
//! the same (mutated real requests, seeded); and they do answer the usual shapes.

use super::super::{full, usual, Method, Rejection};
use super::*;
use crate::caps::Caps;
use crate::config::Config;
use crate::room_token::RoomId;

/// Small caps, so lengths around them are cheap to make.
const ID_CAP: usize = 24;
const MESSAGE_CAP: usize = 48;

fn names(implicit: bool, small: bool) -> Designators {
    let mut config = Config::default();
    if small {
        config.max_id_bytes = ID_CAP;
        config.max_message_bytes = MESSAGE_CAP;
    }
    Designators::new("Messenger".into(), implicit, Caps::from(&config))
}

/// Which of the quick parsers answered a text.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Taken {
    /// Neither: the full parser's alone.
    Full,
    /// The scanner (`fast::send`), not the canonical match.
    Scanner,
    /// The canonical match (`usual::send`), and the scanner too.
    Usual,
}

/// Runs the three parsers on `text`: whenever the scanner answers, the full parser's result
/// must be the same (capacities of the strings included); whenever the canonical match
/// answers, the scanner must answer too, and the same. Returns which answered.
fn same(text: &str, names: &Designators) -> Taken {
    let usual = usual::send(text, names);
    // The borrowed form takes exactly the canonical sends to a room token, and says the same.
    let borrowed = usual::send_to_token(text, names).map(|(id, token, message)| Call {
        id: Some(id),
        method: Method::Send {
            roomid: RoomId::Token(token),
            message: message.to_owned(),
            plain: true,
        },
    });
    let to_token = usual.as_ref().filter(|c| {
        matches!(
            &c.method,
            Method::Send {
                roomid: RoomId::Token(_),
                ..
            }
        )
    });
    assert_eq!(borrowed.as_ref(), to_token, "{text:?}");
    let Some(fast) = send(text, names) else {
        assert_eq!(
            usual, None,
            "the canonical match took what the scanner left: {text:?}"
        );
        return Taken::Full;
    };
    let full = full(text, names);
    assert_eq!(Ok(&fast), full.as_ref(), "{text:?}");
    assert_capacities(&fast, &full, text);
    let Some(usual) = usual else {
        return Taken::Scanner;
    };
    assert_eq!(usual, fast, "{text:?}");
    assert_capacities(&usual, &full, text);
    Taken::Usual
}

/// The strings of a quick parser's `send` hold no more spare room than the full parser's.
fn assert_capacities(quick: &Call, full: &Result<Call, Rejection>, text: &str) {
    if let (
        Method::Send {
            roomid, message, ..
        },
        Ok(Call { method, .. }),
    ) = (&quick.method, full)
    {
        let Method::Send {
            roomid: r,
            message: m,
            ..
        } = method
        else {
            unreachable!()
        };
        if let (RoomId::Other(roomid), RoomId::Other(r)) = (roomid, r) {
            assert_eq!(roomid.capacity(), r.capacity(), "{text:?}");
        }
        assert_eq!(message.capacity(), m.capacity(), "{text:?}");
    }
}

#[test]
fn the_usual_shapes_are_taken() {
    let names = names(false, false);
    for (text, by) in [
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.send","params":{"roomid":"0123456789abcdef0123","message":"hello"}}"#,
            Taken::Usual,
        ),
        (
            r#"{"jsonrpc":"2.0","id":-12,"method":"Messenger.1.send","params":{"roomid":"r","message":"ü"}}"#,
            Taken::Usual,
        ),
        (
            r#"{"jsonrpc":"2.0","id":7,"method":"Messenger.send","params":{"roomid":"r","message":"m"}}"#,
            Taken::Scanner,
        ),
        (
            r#"{"jsonrpc":"2.0","id":"a-7","method":"Messenger.send","params":{"message":"","roomid":"r"}}"#,
            Taken::Scanner,
        ),
        (
            r#"{"params":{"roomid":"r","message":"tab\there \"quoted\" \u00e9 \\ \/ \ud83d\ude00"},"method":"Messenger.1.send","jsonrpc":"2.0"}"#,
            Taken::Scanner,
        ),
        (
            " {\n  \"jsonrpc\" : \"2.0\",\r\n\t\"id\" : -12 , \"method\":\"Messenger.1.send\", \"params\" : { \"roomid\" : \"r\" , \"message\" : \"ü\" } }\n",
            Taken::Scanner,
        ),
        // One step from the canonical text: an escape, whitespace at the end.
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.send","params":{"roomid":"r","message":"a\"b"}}"#,
            Taken::Scanner,
        ),
        (
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"Messenger.1.send\",\"params\":{\"roomid\":\"r\",\"message\":\"m\"}}\n",
            Taken::Scanner,
        ),
    ] {
        assert_eq!(same(text, &names), by, "{text}");
    }
    let implicit = self::names(true, false);
    let bare =
        r#"{"jsonrpc":"2.0","id":0,"method":"1.send","params":{"roomid":"r","message":"m"}}"#;
    assert_eq!(same(bare, &implicit), Taken::Scanner);
    let full = bare.replace("\"1.send", "\"Messenger.1.send");
    assert_eq!(same(&full, &implicit), Taken::Usual);
    assert_eq!(
        same(bare, &names),
        Taken::Full,
        "the Controller's without the callsign"
    );
}

#[test]
fn strings_over_their_caps_are_left_to_the_full_parser() {
    let names = names(false, true);
    for (roomid, message) in [
        ("r".repeat(ID_CAP + 1), "m".to_owned()),
        ("r".to_owned(), "m".repeat(MESSAGE_CAP + 1)),
        ("r".repeat(ID_CAP), "m".repeat(MESSAGE_CAP)),
    ] {
        let text = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"Messenger.1.send","params":{{"roomid":"{roomid}","message":"{message}"}}}}"#
        );
        let at_caps = roomid.len() <= ID_CAP && message.len() <= MESSAGE_CAP;
        let by = if at_caps { Taken::Usual } else { Taken::Full };
        assert_eq!(same(&text, &names), by, "{text}");
        assert_eq!(full(&text, &names).is_ok(), at_caps, "{text}");
    }
}

#[test]
fn a_callsign_json_would_escape_is_never_matched() {
    for callsign in [r#"a","b":"c"#, r"a\u0062", "a\u{1}b"] {
        let names = Designators::new(callsign.into(), false, Caps::default());
        let text = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"{callsign}.1.send","params":{{"roomid":"r","message":"m"}}}}"#
        );
        assert_eq!(same(&text, &names), Taken::Full, "{text}");
    }
}

#[test]
fn the_unusual_is_left_to_the_full_parser() {
    let names = names(false, false);
    for text in [
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.send","params":{"roomid":"r","message":"m"},"x":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"Messenger.1.send","params":{"roomid":"r","message":"m"}}"#,
        r#"{"jsonrpc":"2.0","id":1.5,"method":"Messenger.1.send","params":{"roomid":"r","message":"m"}}"#,
        r#"{"jsonrpc":"2.0","id":01,"method":"Messenger.1.send","params":{"roomid":"r","message":"m"}}"#,
        r#"{"jsonrpc":"2.0","id":null,"method":"Messenger.1.send","params":{"roomid":"r","message":"m"}}"#,
        r#"{"id":1,"method":"Messenger.1.send","params":{"roomid":"r","message":"m"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.sendto","params":{"roomid":"r","message":"m"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.send","params":{"roomid":"r","message":"\ud83d"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.send","params":{"roomid":"r","message":"\ud83d\u0041"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.send","params":{"roomid":"r","message":7}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.send","params":{"roomid":"r"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"Messenger.1.send","params":{"roomid":"r","message":"m"}} x"#,
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"Messenger.1.send\",\"params\":{\"roomid\":\"r\",\"message\":\"a\u{1}\"}}",
    ] {
        assert!(send(text, &names).is_none(), "taken: {text}");
        assert!(usual::send(text, &names).is_none(), "taken: {text}");
    }
}

/// Pieces the generator builds requests from: the valid, the near-valid and the wrong.
const IDS: &[&str] = &[
    "1",
    "0",
    "-1",
    "42",
    "18446744073709551616",
    "-0",
    "01",
    "1.5",
    "1e3",
    "-",
    "\"a\"",
    "\"\"",
    "\"a\\\"b\"",
    "null",
    "true",
    "[1]",
    "{}",
    "\"é\"",
];
const METHODS: &[&str] = &[
    "Messenger.1.send",
    "Messenger.send",
    "Messenger.01.send",
    "Messenger.2.send",
    "send",
    "1.send",
    "Messenger.1.send@x",
    "messenger.1.send",
    "Controller.1.send",
    "Messenger.1.sendto",
    "Messenger.1.Send",
    "Messenger..send",
    "Messenger.1.send.",
    "Messenger.1.",
    "Other.1.send",
    "Messenger.1.s\\u0065nd",
    "Messenger.4294967297.send",
    "",
];
const JSONRPC: &[&str] = &[
    "\"2.0\"",
    "\"1.0\"",
    "2.0",
    "\"2\\u002e0\"",
    "null",
    "\"2.0 \"",
];
const KEYS: &[&str] = &[
    "jsonrpc", "id", "method", "params", "roomid", "message", "user", "x", "i\\u0064", "",
];
const WS: &[&str] = &[" ", "\n", "\t", "\r\n ", " ", "\u{a0}", "\u{c}"];
/// String pieces: plain, escapes (valid, surrogates, invalid), control characters, non-ASCII.
const PIECES: &[&str] = &[
    "a",
    "hello",
    "~0:1:2;",
    "\\n",
    "\\\"",
    "\\\\",
    "\\/",
    "\\b",
    "\\f",
    "\\r",
    "\\t",
    "\\u00e9",
    "\\u00E9",
    "\\u0000",
    "\\u001f",
    "\\ud83d\\ude00",
    "\\ud83d",
    "\\ude00",
    "\\uD800\\u0041",
    "\\u12",
    "\\x",
    "\\",
    "\u{1}",
    "\u{1f}",
    "\u{7f}",
    "é",
    "😀",
    "\"",
    "{",
    "}",
];

fn pick<'a>(rng: &mut fastrand::Rng, from: &[&'a str]) -> &'a str {
    from[rng.usize(..from.len())]
}

/// A string's body of about `len` bytes of text, mostly plain.
fn body(rng: &mut fastrand::Rng, len: usize) -> String {
    let mut s = String::new();
    while s.len() < len {
        if rng.u8(..24) == 0 {
            s.push_str(pick(rng, PIECES));
        } else {
            s.push(rng.alphanumeric());
        }
    }
    s
}

/// A string's body of a length around `cap`, or a short one.
fn text(rng: &mut fastrand::Rng, cap: usize) -> String {
    let len = length(rng, cap);
    body(rng, len)
}

/// A room id's body: a token's form, nearly one (a digit upper case or not hex, one short or
/// over, its first digit escaped), or any text.
fn roomid(rng: &mut fastrand::Rng) -> String {
    let mut token: String = (0..20)
        .map(|_| char::from(b"0123456789abcdef"[rng.usize(..16)]))
        .collect();
    match rng.u8(..8) {
        0 | 1 => {}
        2 => token.replace_range(7..8, pick(rng, &["A", "F", "g", "-", "é"])),
        3 => {
            token.pop();
        }
        4 => token.push('0'),
        5 => token.replace_range(..1, &format!("\\u00{:x}", token.as_bytes()[0])),
        _ => return text(rng, ID_CAP),
    }
    token
}

/// A length around a cap, or a short one.
fn length(rng: &mut fastrand::Rng, cap: usize) -> usize {
    match rng.u8(..4) {
        0 => rng.usize(..8),
        1 => rng.usize(cap.saturating_sub(3)..cap + 4),
        2 if rng.bool() => rng.usize(..cap * 2),
        _ => rng.usize(..cap),
    }
}

/// A send request built from pieces: members in any order, sometimes missing, doubled, of
/// another type, or unknown; or, when `canonical`, those of a send in the order and spacing
/// ThunderJS writes them, each value still drawn from the pieces.
fn generated(rng: &mut fastrand::Rng, canonical: bool) -> String {
    let ws = |rng: &mut fastrand::Rng| match rng.u8(..24) {
        0 if !canonical => pick(rng, WS),
        _ => "",
    };
    let member = |rng: &mut fastrand::Rng, key: &str, value: &str| {
        format!("{}\"{key}\"{}:{}{value}", ws(rng), ws(rng), ws(rng))
    };
    let mut params = vec![
        ("roomid", format!("\"{}\"", roomid(rng))),
        ("message", format!("\"{}\"", text(rng, MESSAGE_CAP))),
    ];
    if !canonical && rng.u8(..6) == 0 {
        let value = match rng.u8(..3) {
            0 => format!("\"{}\"", body(rng, 3)),
            1 => "7".into(),
            _ => "null".into(),
        };
        params.push((pick(rng, KEYS), value));
    }
    let mut members = vec![
        (
            "jsonrpc",
            if rng.u8(..6) == 0 {
                pick(rng, JSONRPC)
            } else {
                "\"2.0\""
            }
            .to_owned(),
        ),
        (
            "id",
            if rng.bool() {
                rng.u32(..).to_string()
            } else {
                pick(rng, IDS).into()
            },
        ),
        (
            "method",
            format!(
                "\"{}\"",
                if rng.u8(..4) > 0 {
                    "Messenger.1.send"
                } else {
                    pick(rng, METHODS)
                }
            ),
        ),
        ("params", String::new()),
    ];
    if !canonical && rng.u8(..6) == 0 {
        members.push((pick(rng, KEYS), pick(rng, IDS).to_owned()));
    }
    for list in [&mut params, &mut members] {
        if canonical {
            break;
        }
        rng.shuffle(list);
        if rng.u8(..8) == 0 {
            let _ = list.remove(rng.usize(..list.len()));
        }
    }
    let params: Vec<String> = params.iter().map(|(k, v)| member(rng, k, v)).collect();
    let params = format!("{{{}{}}}", params.join(","), ws(rng));
    let members: Vec<String> = members
        .iter()
        .map(|(k, v)| {
            member(
                rng,
                k,
                if *k == "params" && v.is_empty() {
                    &params
                } else {
                    v
                },
            )
        })
        .collect();
    format!("{}{{{}{}}}{}", ws(rng), members.join(","), ws(rng), ws(rng))
}

/// `text` with a few random edits: a byte replaced, a piece inserted, a range removed or
/// doubled. `None` if that broke UTF-8 (a frame's text is always UTF-8).
fn mutated(rng: &mut fastrand::Rng, text: &str) -> Option<String> {
    let mut b = text.as_bytes().to_vec();
    for _ in 0..rng.usize(1..4) {
        let at = rng.usize(..=b.len());
        match rng.u8(..4) {
            0 if at < b.len() => b[at] = pick(rng, PIECES).as_bytes()[0],
            1 => {
                let piece = match rng.u8(..4) {
                    0 => pick(rng, WS),
                    1 => pick(rng, IDS),
                    _ => pick(rng, PIECES),
                };
                b.splice(at..at, piece.bytes());
            }
            2 => {
                let end = rng.usize(at..=b.len().min(at + 8));
                b.drain(at..end);
            }
            _ => {
                let end = rng.usize(at..=b.len().min(at + 8));
                let copy = b[at..end].to_vec();
                b.splice(at..at, copy);
            }
        }
    }
    String::from_utf8(b).ok()
}

#[test]
fn whatever_the_fast_path_answers_the_full_parser_answers_the_same() {
    let mut rng = fastrand::Rng::with_seed(14);
    let all = [names(false, true), names(true, true), names(false, false)];
    let (mut texts, mut mutants, mut runs, mut taken, mut escaped) = (0, 0, 0, 0, 0);
    // Taken by the canonical match, of them mutants; mutants that only the scanner took.
    let (mut usual, mut usual_mutants, mut scanned_mutants) = (0, 0, 0);
    while mutants < 25_000 {
        let canonical = rng.bool();
        let base = generated(&mut rng, canonical);
        let mutant = mutated(&mut rng, &base);
        mutants += usize::from(mutant.is_some());
        for (text, is_mutant) in [(Some(base), false), (mutant, true)] {
            let Some(text) = text else { continue };
            texts += 1;
            for names in &all {
                runs += 1;
                let by = same(&text, names);
                let answered = by != Taken::Full;
                taken += usize::from(answered);
                escaped += usize::from(answered && text.contains('\\'));
                usual += usize::from(by == Taken::Usual);
                usual_mutants += usize::from(is_mutant && by == Taken::Usual);
                scanned_mutants += usize::from(is_mutant && by == Taken::Scanner);
            }
        }
    }
    // Every answer must be common, escapes among those taken, mutants among those each quick
    // parser took, or the test proves little.
    let counts = format!(
        "{taken} of {runs} runs on {texts} texts taken, {escaped} escaped; {usual} by the \
         canonical match, {usual_mutants} of them mutants; {scanned_mutants} mutants scanned"
    );
    assert!(taken > runs / 20 && taken < runs / 2, "{counts}");
    assert!(escaped > taken / 10, "{counts}");
    assert!(usual > taken / 4 && usual < taken * 3 / 4, "{counts}");
    assert!(usual_mutants > usual / 20, "{counts}");
    assert!(scanned_mutants > taken / 20, "{counts}");
}
