//! Sizes as QEMU reads them (`qemu_strtosz` in `util/cutils.c`).
//!
//! Accepted, as in QEMU:
//! - `12345`: a decimal number of bytes (of MiB for `-m`);
//! - `12345K`, `4G`, …: a suffix `B`, `K`, `M`, `G`, `T`, `P` or `E` (either
//!   case) scales by a power of 1024;
//! - `1.5G`, `.5M`, `2.K`: a fraction needs a suffix larger than bytes; the
//!   result is rounded to the nearest byte, half up (QEMU 8.1 and later;
//!   older releases truncated);
//! - `0x7fEE`: hexadecimal bytes, without fraction or suffix (`0x1b` is 27).
//!
//! Refused, as in QEMU: negative values (even `-0`), hex with a suffix or a
//! fraction, exponents (`1e3` reads as `1E` followed by junk), empty input,
//! trailing characters, and values of 2^64 bytes or more.

/// Why a size is refused. The message names the value and says what would
/// be accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    /// Not a size at all.
    #[error("'{value}' is not a size: {reason}; give a number with an optional suffix K, M, G, T, P or E (powers of 1024), e.g. 4G")]
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

fn suffix_shift(c: char) -> Option<u32> {
    match c.to_ascii_uppercase() {
        'B' => Some(0),
        'K' => Some(10),
        'M' => Some(20),
        'G' => Some(30),
        'T' => Some(40),
        'P' => Some(50),
        'E' => Some(60),
        _ => None,
    }
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
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
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
        let v = u64::from_str_radix(&hex[..digits_end], 16).map_err(|_| SizeError::TooLarge(text.to_string()))?;
        return v.checked_mul(1 << default_shift).ok_or_else(|| SizeError::TooLarge(text.to_string()));
    }
    let int_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (int_digits, rest) = s.split_at(int_end);
    let (frac_digits, rest) = match rest.strip_prefix('.') {
        Some(after) => {
            let end = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
            after.split_at(end)
        }
        None => ("", rest),
    };
    let had_point = int_digits.len() + frac_digits.len() < s.len() - rest.len();
    if int_digits.is_empty() && frac_digits.is_empty() {
        return Err(invalid(if had_point { "a lone '.' is not a number" } else { "it does not start with a number" }));
    }
    let mut chars = rest.chars();
    let shift = match chars.next() {
        None => default_shift,
        Some(c) => match suffix_shift(c) {
            Some(shift) => shift,
            None => return Err(invalid("it has an unknown suffix")),
        },
    };
    if chars.next().is_some() {
        return Err(invalid("it has trailing characters after the suffix"));
    }
    let fraction_nonzero = frac_digits.bytes().any(|b| b != b'0');
    if fraction_nonzero && shift == 0 {
        return Err(invalid("a fraction needs a suffix larger than bytes (e.g. 1.5G)"));
    }
    let too_large = || SizeError::TooLarge(text.to_string());
    let int: u64 = if int_digits.is_empty() { 0 } else { int_digits.parse().map_err(|_| too_large())? };
    let whole = int.checked_mul(1u64 << shift).ok_or_else(too_large)?;
    // Fractional bytes, rounded half up: 0.frac * 2^shift. 18 digits keep
    // the product inside u128 (10^18 * 2^60 < 2^120).
    let digits: String = frac_digits.chars().take(18).collect();
    let part = if digits.is_empty() {
        0
    } else {
        let num: u128 = digits.parse().unwrap_or(0);
        let den = 10u128.pow(digits.len() as u32);
        u64::try_from(((num << shift) + den / 2) / den).map_err(|_| too_large())?
    };
    whole.checked_add(part).ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_qemu_accepts() {
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("4g"), Ok(4 << 30));
        assert_eq!(parse_size("12345"), Ok(12345));
        assert_eq!(parse_size("2M"), Ok(2 << 20));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("1T"), Ok(1 << 40));
        assert_eq!(parse_size("1E"), Ok(1 << 60));
        assert_eq!(parse_size("8B"), Ok(8));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size(".5M"), Ok(512 << 10));
        assert_eq!(parse_size("2.K"), Ok(2048));
        assert_eq!(parse_size("12.345M"), Ok(12_944_671)); // rounded, as QEMU's test-cutils expects
        assert_eq!(parse_size("0x1000"), Ok(4096));
        assert_eq!(parse_size("0x1b"), Ok(27));
        assert_eq!(parse_size("1.0"), Ok(1)); // a zero fraction needs no suffix
        assert_eq!(parse_size("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_size_mib("512"), Ok(512 << 20));
        assert_eq!(parse_size_mib("2G"), Ok(2 << 30));
    }

    #[test]
    fn refuses_what_qemu_refuses() {
        for bad in ["", "  ", "G", "4Q", "4GB", "4 G", "1e3", "0x", "0x20M", "0x1.8", ".", "1.5", "1.5B", "abc", "4G,"]
        {
            assert!(matches!(parse_size(bad), Err(SizeError::Invalid { .. })), "{bad:?} -> {:?}", parse_size(bad));
        }
        assert!(matches!(parse_size("-0"), Err(SizeError::Negative(_))));
        assert!(matches!(parse_size("-4G"), Err(SizeError::Negative(_))));
        for big in ["16E", "18446744073709551616", "17179869184G"] {
            assert!(matches!(parse_size(big), Err(SizeError::TooLarge(_))), "{big}");
        }
    }

    #[test]
    fn messages_name_the_value_and_the_syntax() {
        let e = parse_size("4Q").unwrap_err().to_string();
        assert!(e.starts_with("'4Q' is not a size: it has an unknown suffix;"), "{e}");
        assert!(e.contains("K, M, G, T, P or E"));
    }
}
