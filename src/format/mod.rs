//! Hand-written, allocation-free formatting shared by the console and JSON outputs.

pub(crate) mod json;
pub(crate) mod text;
pub(crate) mod time;
