//! Human-readable sizes for the generator's command line.

use super::GenError;

/// Parses `2MB`, `100MB`, `1GB`, `512KiB`, `1.5GiB` or a plain byte count.
///
/// `KB`/`MB`/`GB` are decimal (10^3, 10^6, 10^9) and `KiB`/`MiB`/`GiB` binary; the unit is
/// case-insensitive and a trailing `B` alone means bytes.
pub fn parse_size(input: &str) -> Result<u64, GenError> {
    let invalid = |reason| GenError::InvalidSize {
        input: input.to_owned(),
        reason,
    };
    let trimmed = input.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let multiplier: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(invalid("unknown unit (use B, KB, MB, GB, KiB, MiB or GiB)")),
    };
    let value: f64 = number.parse().map_err(|_| invalid("not a number"))?;
    let bytes = value * multiplier as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(invalid("must be at least one byte"));
    }
    // Rounded above and range-checked, so the conversion is exact enough for a size target.
    Ok(bytes.round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        for (input, expected) in [
            ("2MB", 2_000_000),
            ("100mb", 100_000_000),
            ("1GB", 1_000_000_000),
            ("1GiB", 1 << 30),
            ("1.5 KiB", 1536),
            ("4096", 4096),
        ] {
            assert_eq!(parse_size(input).unwrap(), expected, "{input}");
        }
        for bad in ["", "MB", "12XB", "0", "-1MB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
