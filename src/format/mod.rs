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
    // Digits go to a stack buffer and into `out` in one copy (a trace id is 16 bytes): pushing
    // them one `char` at a time cost a capacity check and an encoding each.
    let mut buf = [0u8; 64];
    for chunk in bytes.chunks(32) {
        for (i, &b) in chunk.iter().enumerate() {
            buf[2 * i] = HEX[usize::from(b >> 4)];
            buf[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        // Only ASCII hex digits were written, so this never fails.
        if let Ok(digits) = std::str::from_utf8(&buf[..2 * chunk.len()]) {
            out.push_str(digits);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_hex_writes_every_byte_across_chunks() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = String::from("x");
        write_hex(&mut out, &bytes);
        let expected: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(out, format!("x{expected}"));
        let mut empty = String::new();
        write_hex(&mut empty, &[]);
        assert_eq!(empty, "");
    }
}
