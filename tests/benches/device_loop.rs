//! Device-loop benchmark (filled in below).
fn main() {}
