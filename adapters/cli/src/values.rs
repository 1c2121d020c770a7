//! Parsers of the command line's values (durations, numbers), in the library so that the fuzz
//! targets reach them. Each refuses what is out of its range with the range in the message.

use ea2p_core::units::Nanos;

/// The longest duration a flag takes: an hour (a sampling or export interval beyond it would
/// leave a run with no reading but the first and the last).
pub const MAX_DURATION_S: f64 = 3600.0;

/// Parses `500us`, `1ms`, `2s` or `100ns`, from 1 ns to [`MAX_DURATION_S`]; a number without a
/// unit is refused (it was ambiguous).
pub fn parse_duration(s: &str) -> Result<Nanos, String> {
    let s = s.trim();
    let units = [("ms", 1e6), ("us", 1e3), ("ns", 1.0), ("s", 1e9)];
    let Some((num, mult)) = units
        .iter()
        .find_map(|&(unit, mult)| s.strip_suffix(unit).map(|v| (v.trim(), mult)))
    else {
        return Err(format!(
            "expected a duration with its unit, like 1ms, 500us or 2s, found {s:?}"
        ));
    };
    match num.parse::<f64>().ok().filter(|v| v.is_finite()) {
        Some(v) if v * mult > MAX_DURATION_S * 1e9 => Err(format!(
            "expected a duration of at most {MAX_DURATION_S} s (an hour), found {s:?}"
        )),
        Some(v) if v * mult >= 1.0 => Ok((v * mult) as Nanos),
        Some(_) => Err(format!(
            "expected a duration of at least 1ns, like 1ms, found {s:?}"
        )),
        None => Err(format!(
            "expected a duration like 1ms, 500us or 2s, found {s:?}"
        )),
    }
}

/// The highest grid carbon intensity taken, g CO2e/kWh: above any grid (lignite plants, the
/// most carbon-intensive source, emit about 1,100-1,200 g/kWh over their life cycle, IPCC AR5
/// WGIII Annex III).
pub const MAX_CARBON_INTENSITY: f64 = 2000.0;

/// `--carbon-intensity`: g CO2e/kWh from 0 to [`MAX_CARBON_INTENSITY`].
pub fn parse_carbon_intensity(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: expected a number of g CO2e/kWh, like 475"))?;
    if (0.0..=MAX_CARBON_INTENSITY).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "{s:?}: expected a carbon intensity from 0 to {MAX_CARBON_INTENSITY} g CO2e/kWh \
             (the world average is 475)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1ms"), Ok(1_000_000));
        assert_eq!(parse_duration("500us"), Ok(500_000));
        assert_eq!(parse_duration("2s"), Ok(2_000_000_000));
        assert_eq!(parse_duration("0.5s"), Ok(500_000_000));
        assert!(parse_duration("fast")
            .unwrap_err()
            .contains("expected a duration"));
        assert!(parse_duration("0ms").unwrap_err().contains("at least 1ns"));
        assert!(parse_duration("10").unwrap_err().contains("with its unit"));
        assert!(parse_duration("infs")
            .unwrap_err()
            .contains("like 1ms, 500us"));
        assert!(parse_duration("1e300s")
            .unwrap_err()
            .contains("at most 3600"));
        assert_eq!(parse_duration("3600s"), Ok(3_600_000_000_000));
        assert_eq!(parse_duration(" 10 ms "), Ok(10_000_000));
    }

    #[test]
    fn carbon_intensity() {
        assert_eq!(parse_carbon_intensity("475"), Ok(475.0));
        assert_eq!(parse_carbon_intensity("0"), Ok(0.0));
        for bad in ["-1", "inf", "NaN", "1e300", "2000.5"] {
            let e = parse_carbon_intensity(bad).unwrap_err();
            assert!(e.contains("from 0 to 2000"), "{bad}: {e}");
        }
        assert!(parse_carbon_intensity("lots")
            .unwrap_err()
            .contains("expected a number"));
    }
}
