//! messenger: placeholder while the core lands.
fn main() {}
