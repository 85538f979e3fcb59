//! Corpus generator.
fn main() {}
