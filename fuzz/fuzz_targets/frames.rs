//! Fuzzes the frame scanner the reader uses to take text frames without tungstenite
//! (`frame_scan`) on arbitrary client bytes. Asserts no panic and these properties: fed in any
//! pieces, the scanner counts the same messages; walking the stream frame by frame as the
//! reader gives it to tungstenite, each step ends where tungstenite's own frame reader ends
//! that frame; and a frame `text_frame` takes is, for tungstenite, a final, masked text frame
//! with the same text and length.
//!
//! The input's first byte chooses the size of the pieces; the rest is the stream.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use messenger::frame_scan::{text_frame, FrameScan};
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::FrameSocket;

const MAX: usize = 1000;

fuzz_target!(|data: &[u8]| {
    let Some((&first, stream)) = data.split_first() else {
        return;
    };
    let piece = usize::from(first % 64) + 1;
    let mut whole = FrameScan::default();
    whole.feed(stream);
    let mut pieces = FrameScan::default();
    for chunk in stream.chunks(piece) {
        pieces.feed(chunk);
    }
    assert_eq!(whole.whole(), pieces.whole());
    assert_eq!(whole.at_rest(), pieces.at_rest());

    let mut scan = FrameScan::default();
    let mut at = 0;
    while at < stream.len() {
        let rest = &stream[at..];
        let end = scan.frame_end(rest);
        assert!(end >= 1 && end <= rest.len(), "{end} of {}", rest.len());
        // tungstenite's frame reader on the same bytes: a whole frame exactly `end` long.
        let mut theirs = FrameSocket::new(Cursor::new(rest));
        let frame = theirs.read(Some(1 << 20)).ok().flatten();
        let (read, unused) = theirs.into_inner();
        if frame.is_some() {
            assert_eq!(read.position() as usize - unused.len(), end);
        }
        let mut ours = rest.to_vec();
        if let Some((len, text)) = text_frame(&mut ours, MAX) {
            assert_eq!(len, end);
            let frame = frame.expect("tungstenite reads the frame text_frame took");
            let header = frame.header();
            assert!(header.is_final && !header.rsv1 && !header.rsv2 && !header.rsv3);
            assert_eq!(header.opcode, OpCode::Data(Data::Text));
            let mask = header.mask.expect("masked");
            let payload: Vec<u8> = frame
                .payload()
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert!(payload.len() <= MAX);
            assert_eq!(text.map(str::as_bytes).ok(), std::str::from_utf8(&payload).ok().map(str::as_bytes));
        }
        scan.feed(&rest[..end]);
        at += end;
    }
});
