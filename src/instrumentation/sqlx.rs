//! The sqlx adapter (in progress).
