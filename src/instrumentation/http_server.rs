//! The HTTP server layer (being written).
