//! Locks that survive a poisoned mutex: telemetry state stays usable after a panic elsewhere
//! (a panicking `Debug` impl during formatting, say), and no telemetry call panics because of it.
//! And the slot function of the per-thread caches that replace locks on hot paths.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

#[inline]
pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[inline]
pub(crate) fn read<T: ?Sized>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

#[inline]
pub(crate) fn write<T: ?Sized>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// The slot, among `1 << bits`, of a per-thread direct-mapped cache keyed by an address (a
/// name's or a value's) and a small `salt` (a component id, a length).
///
/// Fibonacci hashing of the whole address: string literals sit a few bytes apart in the
/// binary, and shifting the low bits off, as a modulo of the address does, puts neighbours in
/// one slot, where they evict each other on every call.
#[inline]
pub(crate) fn address_slot(addr: usize, salt: usize, bits: u32) -> usize {
    let key = (addr ^ salt.rotate_left(48)) as u64;
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - bits)) as usize
}
