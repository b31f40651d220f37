//! The dispatcher at scale (to come).

fn main() {}
