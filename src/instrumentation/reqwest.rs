//! The reqwest adapter (in progress).
