use super::*;

const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame with first byte `first` (FIN, RSV, opcode), its length in the shortest form, and
/// its payload masked with `mask` if given.
fn frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let bit = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![first];
    match payload.len() {
        n if n < 126 => out.push(bit | n as u8),
        n if n <= 0xffff => {
            out.push(bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// Frames of every kind, each with the number of messages ended once it has passed.
fn stream() -> Vec<(Vec<u8>, u64)> {
    let m = Some(MASK);
    let big = vec![b'x'; 70_000];
    vec![
        (frame(0x81, b"hello", m), 1),
        (frame(0x81, b"", m), 2),
        (frame(0x81, &[b'y'; 300], m), 3),
        (frame(0x82, &big, m), 4),
        (frame(0x89, b"ping", m), 5),
        (frame(0x82, b"unmasked", None), 6),
        // A fragmented text message with a ping inside it: it ends with its last fragment.
        (frame(0x01, b"frag", m), 6),
        (frame(0x89, b"", m), 7),
        (frame(0x00, &[b'z'; 200], m), 7),
        (frame(0x80, b"end", m), 8),
        (frame(0x8A, b"pong", None), 9),
        (frame(0x88, &[3, 232], m), 10),
    ]
}

/// The frames of `stream` one after the other.
fn joined(frames: &[(Vec<u8>, u64)]) -> Vec<u8> {
    frames.iter().flat_map(|(f, _)| f.clone()).collect()
}

#[test]
fn messages_are_counted_as_they_end_whatever_the_pieces() {
    let frames = stream();
    let bytes = joined(&frames);
    // The count after each byte: the frame's count at its last byte, the one before until then.
    let mut want = Vec::new();
    let mut before = 0;
    for (f, whole) in &frames {
        want.extend(std::iter::repeat_n(before, f.len() - 1));
        want.push(*whole);
        before = *whole;
    }
    for piece in [1, 2, 3, 7, 13, 100, 5_000, bytes.len()] {
        let mut scan = FrameScan::default();
        let mut at = 0;
        for chunk in bytes.chunks(piece) {
            scan.feed(chunk);
            at += chunk.len();
            assert_eq!(scan.whole(), want[at - 1], "pieces of {piece}, at {at}");
        }
        assert!(scan.at_rest());
    }
}

#[test]
fn at_rest_only_between_frames_outside_a_fragmented_message() {
    let mut scan = FrameScan::default();
    assert!(scan.at_rest());
    for (f, _) in stream() {
        scan.feed(&f[..1]);
        assert!(!scan.at_rest(), "inside a header");
        scan.feed(&f[1..]);
    }
    assert!(scan.at_rest());
    let mut scan = FrameScan::default();
    scan.feed(&frame(0x01, b"frag", Some(MASK)));
    assert!(!scan.at_rest(), "a fragmented message is open");
    scan.feed(&frame(0x89, b"", Some(MASK)));
    assert!(!scan.at_rest(), "a ping inside it does not close it");
    scan.feed(&frame(0x80, b"", Some(MASK)));
    assert!(scan.at_rest());
}

#[test]
fn frame_end_is_where_the_current_frame_ends() {
    let frames = stream();
    let bytes = joined(&frames);
    let mut scan = FrameScan::default();
    let mut at = 0;
    for (f, _) in &frames {
        assert_eq!(
            scan.frame_end(&bytes[at..]),
            f.len(),
            "from the frame's start"
        );
        // From inside the frame (inside its header too): the rest of it.
        for part in [1, 2, f.len() / 2, f.len() - 1] {
            if part == 0 || part >= f.len() {
                continue;
            }
            let mut inside = scan;
            inside.feed(&bytes[at..at + part]);
            assert_eq!(inside.frame_end(&bytes[at + part..]), f.len() - part);
        }
        // Not all of it there: all of what is.
        assert_eq!(scan.frame_end(&f[..f.len() - 1]), f.len() - 1);
        scan.feed(f);
        at += f.len();
    }
    assert_eq!(scan.frame_end(&[]), 0);
}

#[test]
fn a_whole_final_masked_text_frame_is_taken_unmasked() {
    for text in [
        "",
        "hi",
        "{\"jsonrpc\":\"2.0\"}",
        &"é".repeat(100),
        &"x".repeat(125),
    ] {
        let mut buf = frame(0x81, text.as_bytes(), Some(MASK));
        let len = buf.len();
        buf.extend_from_slice(&frame(0x81, b"next", Some(MASK)));
        let (n, got) = text_frame(&mut buf, 1000).unwrap();
        assert_eq!((n, got), (len, Ok(text)));
    }
    // A length written longer than it need be, as tungstenite also reads it.
    let mut buf = vec![0x81, 0x80 | 127];
    buf.extend_from_slice(&2u64.to_be_bytes());
    buf.extend_from_slice(&MASK);
    buf.extend(b"hi".iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    let len = buf.len();
    assert_eq!(text_frame(&mut buf, 1000).unwrap(), (len, Ok("hi")));
    // At the size limit, not over it.
    let mut buf = frame(0x81, &[b'a'; 300], Some(MASK));
    assert!(text_frame(&mut buf, 300).is_some());
    let mut buf = frame(0x81, &[b'a'; 301], Some(MASK));
    assert!(text_frame(&mut buf, 300).is_none());
}

#[test]
fn any_other_frame_is_left_as_it_was() {
    let m = Some(MASK);
    let text = frame(0x81, b"{\"a\":1}", m);
    let mut cases = vec![
        ("binary", frame(0x82, b"{}", m)),
        ("ping", frame(0x89, b"", m)),
        ("close", frame(0x88, &[3, 232], m)),
        ("first fragment", frame(0x01, b"{", m)),
        ("continuation", frame(0x80, b"}", m)),
        ("an extension bit", frame(0xC1, b"{}", m)),
        ("unmasked", frame(0x81, b"{}", None)),
        (
            "a 64-bit length over the limit",
            frame(0x81, &vec![b'a'; 70_000], m),
        ),
        ("over the limit", frame(0x81, &[b'a'; 101], m)),
    ];
    for cut in 0..text.len() {
        cases.push(("not all there", text[..cut].to_vec()));
    }
    for (why, mut buf) in cases {
        let before = buf.clone();
        assert!(text_frame(&mut buf, 100).is_none(), "{why}");
        assert_eq!(buf, before, "{why}");
    }
}

#[test]
fn a_text_frame_that_is_not_utf8_says_why() {
    let mut buf = frame(0x81, &[b'a', 0xff, b'b'], Some(MASK));
    let len = buf.len();
    let (n, got) = text_frame(&mut buf, 100).unwrap();
    assert_eq!(n, len);
    assert_eq!(got.unwrap_err().valid_up_to(), 1);
}

#[test]
fn masking_is_the_bytewise_xor_for_every_length() {
    let data: Vec<u8> = (0..41u8).map(|i| i.wrapping_mul(73)).collect();
    for len in 0..=data.len() {
        let mut got = data[..len].to_vec();
        apply_mask(&mut got, MASK);
        let want: Vec<u8> = data[..len]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ MASK[i % 4])
            .collect();
        assert_eq!(got, want, "{len} bytes");
    }
}
