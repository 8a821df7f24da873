//! RFC 3339 timestamps in UTC with microseconds, without a date-time dependency.

use std::time::{SystemTime, UNIX_EPOCH};

/// Appends `2026-11-21T05:10:04.123456Z`.
pub(crate) fn write_rfc3339(out: &mut String, time: SystemTime) {
    let (secs, micros) = match time.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_micros()),
        Err(_) => (0, 0),
    };
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400) as u32;
    let (y, m, d) = civil_from_days(days);
    let mut buf = *b"0000-00-00T00:00:00.000000Z";
    let y = y.clamp(0, 9999) as u32;
    put(&mut buf[0..4], y);
    put(&mut buf[5..7], m);
    put(&mut buf[8..10], d);
    put(&mut buf[11..13], rem / 3600);
    put(&mut buf[14..16], (rem % 3600) / 60);
    put(&mut buf[17..19], rem % 60);
    put(&mut buf[20..26], micros);
    // Only ASCII digits and separators were written.
    out.push_str(std::str::from_utf8(&buf).unwrap_or("1970-01-01T00:00:00.000000Z"));
}

/// Writes `n` as zero-padded decimal filling `slot`.
#[inline]
fn put(slot: &mut [u8], mut n: u32) {
    for b in slot.iter_mut().rev() {
        *b = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses an RFC 3339 timestamp in UTC (`2026-11-21T05:10:04.123456Z`, any number of
/// fractional digits, none included), as [`write_rfc3339`] writes them.
pub(crate) fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        part.iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if b.len() < 20 || separators.iter().any(|&(i, c)| b[i] != c) || b[b.len() - 1] != b'Z' {
        return None;
    }
    let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hh, mm, ss) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let mut nanos = 0u32;
    match &b[19..b.len() - 1] {
        [] => {}
        [b'.', fraction @ ..] if !fraction.is_empty() && fraction.len() <= 9 => {
            for (i, &digit) in fraction.iter().enumerate() {
                if !digit.is_ascii_digit() {
                    return None;
                }
                nanos += u32::from(digit - b'0') * 10u32.pow(8 - i as u32);
            }
        }
        _ => return None,
    }
    let days = days_from_civil(i64::from(y), m, d);
    let secs = days * 86_400 + i64::from(hh * 3600 + mm * 60 + ss);
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + std::time::Duration::new(secs, nanos))
}

/// (year, month, day), proleptic Gregorian, to days since 1970-01-01 (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        let mut s = String::new();
        write_rfc3339(&mut s, UNIX_EPOCH);
        assert_eq!(s, "1970-01-01T00:00:00.000000Z");
        s.clear();
        // 2024-02-29T23:59:59.5Z, a leap day.
        write_rfc3339(
            &mut s,
            UNIX_EPOCH + Duration::from_millis(1_709_251_199_500),
        );
        assert_eq!(s, "2024-02-29T23:59:59.500000Z");
        s.clear();
        write_rfc3339(&mut s, UNIX_EPOCH + Duration::from_secs(4_102_444_800));
        assert_eq!(s, "2100-01-01T00:00:00.000000Z");
    }

    #[test]
    fn parses_what_it_writes() {
        for micros in [
            0u64,
            1_709_251_199_500_000,
            4_102_444_800_000_001,
            951_782_400_123_456,
        ] {
            let time = UNIX_EPOCH + Duration::from_micros(micros);
            let mut s = String::new();
            write_rfc3339(&mut s, time);
            assert_eq!(parse_rfc3339(&s), Some(time), "{s}");
        }
        assert_eq!(
            parse_rfc3339("2024-02-29T23:59:59Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_709_251_199))
        );
        for bad in [
            "",
            "2024-02-29 23:59:59Z",
            "2024-13-01T00:00:00Z",
            "2024-02-29T23:59:59.Z",
            "2024-02-29T23:59:59.5",
            "2024-02-29T23:59:59.5+01:00",
            "2024-02-29T2x:59:59Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }
}
