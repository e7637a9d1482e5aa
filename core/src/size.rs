//! Sizes as QEMU reads them (`qemu_strtosz` in `util/cutils.c`), and the two
//! ways pmemlab writes them: the shortest exact text ([`short_size`], read
//! back by [`parse_size`]) and binary units for people ([`human_size`]).
//!
//! Every size a user types goes through [`parse_size`]: scenario fields, the
//! QEMU command line and monitor, and CLI options.
//!
//! Accepted, as in QEMU:
//! - `12345`: a decimal number of bytes (of MiB for `-m`, [`parse_size_mib`]);
//!   leading zeros are decimal (`010` is 10), leading white space and one `+`
//!   are skipped (as `strtoull` does);
//! - `12345K`, `4G`, …: one suffix `B`, `K`, `M`, `G`, `T`, `P` or `E`, in
//!   either case, scales by a power of 1024 (`B` by 1);
//! - `1.5G`, `.5M`, `2.K`: a fraction needs a suffix larger than bytes; the
//!   result is rounded to the nearest byte, half up (QEMU 8.1 and later;
//!   older releases truncated). A zero fraction needs no suffix (`1.0`);
//! - `0x7fEE`: hexadecimal bytes, without fraction or suffix (`0x1b` is 27,
//!   not 1 EiB and junk).
//!
//! Refused, as in QEMU: negative values (even `-0`), hex with a suffix or a
//! fraction, exponents (`1e3` reads as `1E` followed by junk), empty input,
//! white space or anything else after the suffix, and values of 2^64 bytes
//! or more.

/// Why a size is refused. The message names the value and says what would
/// be accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not a size at all.
    #[error(
        "'{value}' is not a size: {reason}; give a number with an optional suffix K, M, G, T, P or E \
         (powers of 1024), e.g. 4G"
    )]
    Invalid {
        /// The text.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A negative number.
    #[error("'{0}' is not a size: sizes cannot be negative")]
    Negative(String),
    /// 2^64 bytes or more.
    #[error("'{0}' is too large: sizes must be below 16 EiB")]
    TooLarge(String),
}

/// The suffix letters and the power of two each scales by (`B` is 1).
const SUFFIXES: [(char, u32); 7] = [('B', 0), ('K', 10), ('M', 20), ('G', 30), ('T', 40), ('P', 50), ('E', 60)];

fn suffix_shift(c: char) -> Option<u32> {
    let upper = c.to_ascii_uppercase();
    SUFFIXES.iter().find(|(letter, _)| *letter == upper).map(|(_, shift)| *shift)
}

/// Parses a size in bytes (QEMU's `qemu_strtosz`: no suffix means bytes).
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    parse_with_default(text, 0)
}

/// Parses a size whose default unit is MiB (QEMU's `qemu_strtosz_MiB`, used
/// by `-m`); returns bytes.
pub fn parse_size_mib(text: &str) -> Result<u64, SizeError> {
    parse_with_default(text, 20)
}

fn parse_with_default(text: &str, default_shift: u32) -> Result<u64, SizeError> {
    let invalid = |reason| SizeError::Invalid { value: text.to_string(), reason };
    // strtoull skips leading white space and takes an optional sign.
    let s = text.trim_start();
    if s.is_empty() {
        return Err(invalid("it is empty"));
    }
    if s.starts_with('-') {
        return Err(SizeError::Negative(text.to_string()));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => parse_hex(text, hex, default_shift),
        None => parse_decimal(text, s, default_shift),
    }
}

/// `0x…`: digits only; a suffix or a fraction is refused (is `0x1e` 30 bytes
/// or 1 EiB?).
fn parse_hex(text: &str, hex: &str, default_shift: u32) -> Result<u64, SizeError> {
    let invalid = |reason| SizeError::Invalid { value: text.to_string(), reason };
    let digits_end = hex.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(hex.len());
    if digits_end == 0 {
        return Err(invalid("'0x' must be followed by hexadecimal digits"));
    }
    let rest = &hex[digits_end..];
    if rest.starts_with('.') {
        return Err(invalid("hexadecimal sizes cannot have a fraction"));
    }
    if rest.chars().next().is_some_and(|c| suffix_shift(c).is_some()) {
        return Err(invalid("hexadecimal sizes cannot have a suffix"));
    }
    if !rest.is_empty() {
        return Err(invalid("it has trailing characters"));
    }
    let too_large = || SizeError::TooLarge(text.to_string());
    let v = u64::from_str_radix(&hex[..digits_end], 16).map_err(|_| too_large())?;
    v.checked_mul(1 << default_shift).ok_or_else(too_large)
}

/// `123`, `1.5G`, `.5M`, `2.K`: digits, an optional fraction, one optional
/// suffix, nothing after it.
fn parse_decimal(text: &str, s: &str, default_shift: u32) -> Result<u64, SizeError> {
    let invalid = |reason| SizeError::Invalid { value: text.to_string(), reason };
    let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (int_digits, rest) = s.split_at(int_end);
    let (had_point, frac_digits, rest) = match rest.strip_prefix('.') {
        Some(after) => {
            let end = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
            let (frac, rest) = after.split_at(end);
            (true, frac, rest)
        }
        None => (false, "", rest),
    };
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(invalid(if had_point { "a lone '.' is not a number" } else { "it does not start with a number" }));
    }
    let mut chars = rest.chars();
    let shift = match chars.next() {
        None => default_shift,
        Some(c) => suffix_shift(c).ok_or_else(|| invalid("it has an unknown suffix"))?,
    };
    if chars.next().is_some() {
        return Err(invalid("it has trailing characters after the suffix"));
    }
    if shift == 0 && frac_digits.bytes().any(|b| b != b'0') {
        return Err(invalid("a fraction needs a suffix larger than bytes (e.g. 1.5G)"));
    }
    let too_large = || SizeError::TooLarge(text.to_string());
    let int: u64 = if int_digits.is_empty() { 0 } else { int_digits.parse().map_err(|_| too_large())? };
    let whole = int.checked_mul(1u64 << shift).ok_or_else(too_large)?;
    whole.checked_add(fraction_bytes(frac_digits, shift)).ok_or_else(too_large)
}

/// `0.digits × 2^shift`, rounded to the nearest byte, half up. Eighteen
/// digits keep the product inside u128 (10^18 × 2^60 < 2^120) and are more
/// than a double (QEMU's fraction) holds.
fn fraction_bytes(digits: &str, shift: u32) -> u64 {
    let digits = &digits[..digits.len().min(18)];
    if digits.is_empty() {
        return 0;
    }
    let num: u128 = digits.parse().unwrap_or(0);
    let den = 10u128.pow(digits.len() as u32);
    // < 2^shift ≤ 2^60: fits.
    (((num << shift) + den / 2) / den) as u64
}

/// The shortest text [`parse_size`] reads back as exactly `bytes`: the
/// largest suffix that divides it (`64M`, `3K`), else the plain number
/// (`1536`, `0`).
pub fn short_size(bytes: u64) -> String {
    if bytes != 0 {
        for (letter, shift) in SUFFIXES.iter().rev().filter(|(_, shift)| *shift > 0) {
            if bytes.trailing_zeros() >= *shift {
                return format!("{}{letter}", bytes >> shift);
            }
        }
    }
    bytes.to_string()
}

/// A size in binary units for people, as `fincore` prints it: `0 B`,
/// `4 KiB`, `1.5 MiB` (one decimal when not whole), `4 GiB`. Not exact: to
/// write a size that is read back, use [`short_size`].
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut unit = 0;
    let mut scaled = bytes as f64;
    while scaled >= 1024.0 && unit + 1 < UNITS.len() {
        scaled /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else if scaled.fract() == 0.0 {
        format!("{scaled:.0} {}", UNITS[unit])
    } else {
        format!("{scaled:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(text: &str) -> bool {
        matches!(parse_size(text), Err(SizeError::Invalid { .. }))
    }

    #[test]
    fn a_plain_number_is_bytes_and_leading_zeros_are_decimal() {
        assert_eq!(parse_size("12345"), Ok(12345));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("010"), Ok(10));
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn leading_white_space_and_a_plus_are_skipped_as_strtoull_does() {
        assert_eq!(parse_size("  4K"), Ok(4096));
        assert_eq!(parse_size("+4K"), Ok(4096));
        assert_eq!(parse_size("\t+1M"), Ok(1 << 20));
        assert!(invalid("++4K"));
    }

    #[test]
    fn each_suffix_scales_by_its_power_of_1024_in_either_case() {
        for (i, (upper, lower)) in
            [('B', 'b'), ('K', 'k'), ('M', 'm'), ('G', 'g'), ('T', 't'), ('P', 'p'), ('E', 'e')].into_iter().enumerate()
        {
            let want = 3u64 << (10 * i);
            assert_eq!(parse_size(&format!("3{upper}")), Ok(want), "3{upper}");
            assert_eq!(parse_size(&format!("3{lower}")), Ok(want), "3{lower}");
        }
    }

    #[test]
    fn a_fraction_needs_a_suffix_larger_than_bytes_and_rounds_half_up() {
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size(".5M"), Ok(512 << 10));
        assert_eq!(parse_size("2.K"), Ok(2048));
        assert_eq!(parse_size("1.0"), Ok(1), "a zero fraction needs no suffix");
        assert_eq!(parse_size("12.345M"), Ok(12_944_671), "12944670.72 rounds up, as QEMU's test-cutils expects");
        assert_eq!(parse_size("1.0001K"), Ok(1024), "1024.1024 rounds down");
        assert_eq!(parse_size("0.0005K"), Ok(1), "0.512 bytes round to 1");
        assert!(invalid("1.5"));
        assert!(invalid("1.5B"));
        assert!(invalid("."));
        assert!(invalid(".K"));
    }

    #[test]
    fn hex_is_bytes_without_suffix_or_fraction() {
        assert_eq!(parse_size("0x1000"), Ok(4096));
        assert_eq!(parse_size("0X7fEE"), Ok(0x7fee));
        assert_eq!(parse_size("0x1b"), Ok(27));
        assert_eq!(parse_size("0x1e"), Ok(30), "e is a digit here, not the exa suffix");
        assert_eq!(parse_size("0xffffffffffffffff"), Ok(u64::MAX));
        for bad in ["0x", "0x20M", "0x1.8", "0xg"] {
            assert!(invalid(bad), "{bad}");
        }
        assert!(matches!(parse_size("0x10000000000000000"), Err(SizeError::TooLarge(_))));
    }

    #[test]
    fn junk_is_refused() {
        for bad in ["", "  ", "G", "4Q", "4GB", "4 G", "4G ", "1e3", "abc", "4G,", "4KiB", "1,5G"] {
            assert!(invalid(bad), "{bad:?} -> {:?}", parse_size(bad));
        }
    }

    #[test]
    fn negative_values_are_refused_even_zero() {
        for bad in ["-0", "-4G", " -1", "-0x10"] {
            assert!(matches!(parse_size(bad), Err(SizeError::Negative(_))), "{bad}");
        }
    }

    #[test]
    fn sizes_of_2_to_the_64_or_more_overflow() {
        for big in ["16E", "18446744073709551616", "17179869184G", "99999999999999999999999"] {
            assert!(matches!(parse_size(big), Err(SizeError::TooLarge(_))), "{big}: {:?}", parse_size(big));
        }
        assert_eq!(parse_size("15E"), Ok(15 << 60));
        assert_eq!(parse_size("15.5E"), Ok(31 << 59));
    }

    #[test]
    fn the_mib_variant_defaults_to_mib_but_honours_a_suffix() {
        assert_eq!(parse_size_mib("512"), Ok(512 << 20));
        assert_eq!(parse_size_mib("2G"), Ok(2 << 30));
        assert_eq!(parse_size_mib("1.5"), Ok(3 << 19), "a fraction of the default MiB is allowed");
        assert_eq!(parse_size_mib("4096B"), Ok(4096));
        assert!(matches!(parse_size_mib("17592186044416"), Err(SizeError::TooLarge(_))), "2^44 MiB = 2^64 bytes");
    }

    #[test]
    fn messages_name_the_value_and_the_syntax() {
        let e = parse_size("4Q").unwrap_err().to_string();
        assert!(e.starts_with("'4Q' is not a size: it has an unknown suffix;"), "{e}");
        assert!(e.contains("K, M, G, T, P or E"), "{e}");
        assert_eq!(parse_size("-1K").unwrap_err().to_string(), "'-1K' is not a size: sizes cannot be negative");
        assert_eq!(parse_size("16E").unwrap_err().to_string(), "'16E' is too large: sizes must be below 16 EiB");
    }

    #[test]
    fn the_short_form_is_exact_and_reads_back() {
        assert_eq!(short_size(64 << 20), "64M");
        assert_eq!(short_size(1536), "1536");
        assert_eq!(short_size(3 << 10), "3K");
        assert_eq!(short_size(1 << 60), "1E");
        assert_eq!(short_size(0), "0");
        for n in [1u64, 4096, 1 << 20, 1536, 5 << 40, 3 << 59, u64::MAX] {
            assert_eq!(parse_size(&short_size(n)), Ok(n), "{n}");
        }
    }

    #[test]
    fn the_human_form_uses_binary_units() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(4096), "4 KiB");
        assert_eq!(human_size(1536 << 10), "1.5 MiB");
        assert_eq!(human_size(4 << 30), "4 GiB");
        assert_eq!(human_size(u64::MAX), "16 EiB");
    }
}
