//! The `unitel` command-line tool.

fn main() {}
