//! fedctl
fn main() {}
