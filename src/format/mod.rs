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

/// The bytes `value` percent-decodes to (`%XX`, hex digits of either case), or `None` if a
/// `%` is not followed by two hex digits. W3C baggage, `OTEL_*` key=value lists, endpoint
/// credentials.
pub(crate) fn percent_decode(value: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = if b == b'%' {
            let [high, low, tail @ ..] = tail else {
                return None;
            };
            out.push(hex_digit(*high)? << 4 | hex_digit(*low)?);
            tail
        } else {
            out.push(b);
            tail
        };
    }
    Some(out)
}

/// The value of a hex digit, either case.
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decode_takes_two_hex_digits_and_nothing_else() {
        assert_eq!(
            percent_decode("a%20b%2Fc%2f").as_deref(),
            Some(&b"a b/c/"[..])
        );
        // `u8::from_str_radix` would take `+f` as a number: a sign is not a hex digit.
        for bad in ["%+f", "%-1", "%2", "%", "%zz", "%\u{e9}"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }

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
