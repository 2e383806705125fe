//! Fuzzes the whole protocol core against its model: the fuzzer's bytes are the choices of the
//! model test's harness (`tests/model/`, included below), one byte each, so every input is a
//! sequence of actions from several clients (Messenger and Kurento WebSockets, HTTP calls,
//! malformed frames, disconnects, the clock moving on; connection-wide registrations, room
//! history, strings over small caps) through the real edge parsers and the real engine, every
//! reply and event checked against the model. A disagreement panics with the actions that led
//! to it.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/model/mod.rs"]
mod model;

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = model::run(&mut model::Bytes::new(data), usize::MAX) {
        panic!("{failure}");
    }
});
