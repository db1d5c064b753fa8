// Owns the text of `--sweep SIZES`: a list (`1000,10000,100000`) or a range (`1k..1M`), with
// `k`, `M` and `G` for 10^3, 10^6 and 10^9. Must never run anything.

//! Input sizes of a sweep.
//!
//! A **list** gives the sizes themselves: `1000,10000,100000` or `1k,10k,100k`. A **range**
//! `A..B` gives the 1-2-5 series between its ends, both included: `1k..1M` is 1k, 2k, 5k, 10k,
//! 20k, 50k, 100k, 200k, 500k, 1M, three points per decade, evenly spread on the log axis the
//! fit and the figure use. Sizes are sorted and repeated ones dropped; a sweep needs at least
//! two different sizes, none of them 0.

/// The largest size accepted (a size is a count of things the workload builds).
pub const MAX_SIZE: u64 = 1_000_000_000_000;

/// Parse `SIZES` into distinct sizes, smallest first.
pub fn parse(text: &str) -> Result<Vec<u64>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("no sizes: give a list (1000,10000,100000) or a range (1k..1M)".into());
    }
    let mut sizes = match text.split_once("..") {
        Some((from, to)) => {
            let (from, to) = (number(from)?, number(to)?);
            if from >= to {
                return Err(format!(
                    "the range {text} does not grow: write the smaller size first, e.g. 1k..1M"
                ));
            }
            series(from, to)
        }
        None => text
            .split(',')
            .map(number)
            .collect::<Result<Vec<u64>, String>>()?,
    };
    sizes.sort_unstable();
    sizes.dedup();
    if sizes.len() < 2 {
        return Err(format!(
            "one size ({}) is not a sweep: give at least two, e.g. 1000,10000,100000",
            sizes.first().copied().unwrap_or(0)
        ));
    }
    Ok(sizes)
}

/// One size: digits with an optional `k`, `M` or `G`; never 0.
fn number(part: &str) -> Result<u64, String> {
    let part = part.trim();
    let (digits, factor) = match part.char_indices().last() {
        Some((i, 'k' | 'K')) => (&part[..i], 1_000),
        Some((i, 'M')) => (&part[..i], 1_000_000),
        Some((i, 'G')) => (&part[..i], 1_000_000_000),
        _ => (part, 1),
    };
    let value = digits
        .trim()
        .replace('_', "")
        .parse::<u64>()
        .ok()
        .and_then(|v| v.checked_mul(factor))
        .ok_or_else(|| {
            format!("'{part}' is not a size: give a whole number, optionally with k, M or G")
        })?;
    if value == 0 {
        return Err("a size of 0 measures nothing: sizes start at 1".into());
    }
    if value > MAX_SIZE {
        return Err(format!("{part} is above the largest size, 10^12"));
    }
    Ok(value)
}

/// The 1-2-5 values from `from` to `to`, both ends included.
fn series(from: u64, to: u64) -> Vec<u64> {
    let mut out = vec![from, to];
    let mut decade: u64 = 1;
    while decade <= to {
        for d in [1, 2, 5] {
            let v = decade.saturating_mul(d);
            if v > from && v < to {
                out.push(v);
            }
        }
        decade = decade.saturating_mul(10);
    }
    out
}

/// `1k`, `20k`, `1.5M`: a size as a person writes it.
pub fn short(size: u64) -> String {
    for (factor, suffix) in [(1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")] {
        if size >= factor {
            let v = size as f64 / factor as f64;
            return if size.is_multiple_of(factor) {
                format!("{}{suffix}", size / factor)
            } else {
                format!("{}{suffix}", crate::format::format_count(v))
            };
        }
    }
    size.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_and_ranges_parse() {
        assert_eq!(parse("1000,10000,100000"), Ok(vec![1000, 10_000, 100_000]));
        assert_eq!(parse(" 10k, 1k ,1k"), Ok(vec![1000, 10_000]));
        assert_eq!(
            parse("1k..1M").unwrap(),
            [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000].map(|k| k * 1000)
        );
        assert_eq!(parse("300..2k"), Ok(vec![300, 500, 1000, 2000]));
    }

    #[test]
    fn bad_sizes_say_what_is_wrong() {
        assert!(parse("1000").unwrap_err().contains("one size"));
        assert!(parse("1000,1000").unwrap_err().contains("one size"));
        assert!(parse("0,10").unwrap_err().contains("size of 0"));
        assert!(parse("1k..0").unwrap_err().contains("size of 0"));
        assert!(parse("1M..1k").unwrap_err().contains("does not grow"));
        assert!(parse("ten,20").unwrap_err().contains("'ten' is not a size"));
        assert!(parse("").unwrap_err().contains("no sizes"));
    }

    #[test]
    fn sizes_print_short() {
        assert_eq!(short(1000), "1k");
        assert_eq!(short(1_000_000), "1M");
        assert_eq!(short(300), "300");
        assert_eq!(short(1500), "1.5k");
    }
}
