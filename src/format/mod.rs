//! Hand-written, allocation-free formatting shared by the console and JSON outputs.

pub(crate) mod json;
pub(crate) mod sql;
pub(crate) mod text;
pub(crate) mod time;

/// Appends an unsigned integer in decimal.
#[inline]
pub(crate) fn write_u64(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Appends a signed integer in decimal.
#[inline]
pub(crate) fn write_i64(out: &mut String, n: i64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Whether `s` is exactly `len` lowercase hex digits (how trace and span ids are written).
#[inline]
pub(crate) fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Appends bytes as lowercase hex (trace and span ids).
#[inline]
pub(crate) fn write_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xf)] as char);
    }
}
