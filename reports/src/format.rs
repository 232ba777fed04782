//! How figures are written: rates with SI prefixes, durations with units, dates.

/// A rate or count with three significant digits and an SI prefix: `812`, `45.3 k`, `2.10 M`.
pub fn si(x: f64) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    let (value, prefix) = match x.abs() {
        a if a >= 1e9 => (x / 1e9, " G"),
        a if a >= 1e6 => (x / 1e6, " M"),
        a if a >= 1e3 => (x / 1e3, " k"),
        _ => (x, ""),
    };
    format!("{}{prefix}", three_digits(value))
}

/// Three significant digits, no trailing exponent: `1.23`, `12.3`, `123`.
fn three_digits(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 10.0 => format!("{v:.1}"),
        _ => format!("{v:.2}"),
    }
}

/// `12.0 M` as `12 M`, `1.50 µs` as `1.5 µs`: for axis ticks, which are round numbers.
fn trim_zeros(s: String) -> String {
    let Some(dot) = s.find('.') else {
        return s;
    };
    let end = s[dot..]
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or(s.len(), |i| dot + i);
    let number = s[..end].trim_end_matches('0').trim_end_matches('.');
    format!("{number}{}", &s[end..])
}

/// [`si`] for an axis tick: `10 k`, `2.5 M`.
pub(crate) fn si_tick(x: f64) -> String {
    trim_zeros(si(x))
}

/// [`ns`] for an axis tick: `100 µs`, `1 ms`.
pub(crate) fn ns_tick(x: f64) -> String {
    trim_zeros(ns(x))
}

/// A duration in nanoseconds with a unit and three significant digits: `850 ns`, `4.20 µs`,
/// `12.0 ms`, `1.50 s`.
pub fn ns(x: f64) -> String {
    if !x.is_finite() {
        return "—".into();
    }
    match x.abs() {
        a if a >= 1e9 => format!("{} s", three_digits(x / 1e9)),
        a if a >= 1e6 => format!("{} ms", three_digits(x / 1e6)),
        a if a >= 1e3 => format!("{} µs", three_digits(x / 1e3)),
        _ => format!("{x:.0} ns"),
    }
}

/// A ratio: `1.83×`.
pub(crate) fn ratio(r: f64) -> String {
    if !r.is_finite() {
        "unbounded×".into()
    } else if r >= 100.0 {
        format!("{r:.0}×")
    } else if r >= 10.0 {
        format!("{r:.1}×")
    } else {
        format!("{r:.2}×")
    }
}

/// Bytes in binary units: `7.8 GiB`.
pub(crate) fn bytes(b: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    let b = b as f64;
    if b >= GIB {
        format!("{:.1} GiB", b / GIB)
    } else {
        format!("{:.1} MiB", b / MIB)
    }
}

/// A UTC date and time from seconds since the Unix epoch: `2025-06-30 14:05 UTC`.
pub(crate) fn utc(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures() {
        assert_eq!(si(812.0), "812");
        assert_eq!(si(45_310.0), "45.3 k");
        assert_eq!(si(2_104_000.0), "2.10 M");
        assert_eq!(ns(850.0), "850 ns");
        assert_eq!(ns(4_200.0), "4.20 µs");
        assert_eq!(ns(12_000_000.0), "12.0 ms");
        assert_eq!(ratio(1.834), "1.83×");
        assert_eq!(bytes(8 << 30), "8.0 GiB");
        assert_eq!(si_tick(12e6), "12 M");
        assert_eq!(si_tick(2.5e6), "2.5 M");
        assert_eq!(si_tick(100.0), "100");
        assert_eq!(ns_tick(1e9), "1 s");
        assert_eq!(ns_tick(1e5), "100 µs");
        assert_eq!(ns_tick(50.0), "50 ns");
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_751_292_300), "2025-06-30 14:05 UTC");
    }
}
