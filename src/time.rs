//! Time: the one home for reading, writing and converting times and durations.
//!
//! Owns every time format contimg reads (ISO-8601 as the command line takes it, MJD, the FITS
//! DATE-OBS forms, durations like `30m`) and every form it writes (the database's, the manifests'
//! and the queue's ISO strings, FITS header dates), and the MJD <-> UTC conversion.
//!
//! Invariants: all times are UTC; every parser returns a typed error naming the text it could not
//! read and what it accepts, and never panics; a duration is positive, finite and at most
//! [`MAX_DURATION_S`], so adding it to any time of interest cannot overflow.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// A UTC instant.
pub type Instant = DateTime<Utc>;

/// Modified Julian Date of the Unix epoch (1970-01-01T00:00:00Z).
pub const MJD_UNIX_EPOCH: f64 = 40_587.0;

/// The longest duration accepted anywhere (windows, timeouts, leases, retry delays): 10 years.
pub const MAX_DURATION_S: f64 = 10.0 * 366.0 * 86_400.0;

/// A time or duration that cannot be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TimeError {
    #[error(
        "cannot read {0:?} as a time: use ISO-8601 UTC (2026-11-20T03:00:00Z, 2026-11-20T03:00Z \
         or 2026-11-20) or an MJD (61041.125)"
    )]
    Time(String),
    #[error(
        "cannot read {0:?} as a date: use YYYY-MM-DD[Thh:mm:ss[.sss]], YYYYMMDD or DD/MM/YY \
         (the FITS DATE-OBS forms)"
    )]
    Date(String),
    #[error("MJD {0} is not a time: give a finite MJD between 0 and 2900000")]
    Mjd(f64),
    #[error(
        "cannot read {0:?} as a duration: use a number and a unit s, m, h or d (e.g. 30m), \
         or a bare number of seconds"
    )]
    Duration(String),
    #[error("duration {0:?} must be positive")]
    NotPositive(String),
    #[error("duration {0:?} is too long: the limit is 3660d (10 years)")]
    TooLong(String),
}

/// The current time.
pub fn now() -> Instant {
    Utc::now()
}

/// The current time as ISO-8601 UTC with seconds, the format of every TEXT time column.
pub fn now_iso() -> String {
    iso(now())
}

/// The current time as Unix seconds, the format of the seed's INTEGER time columns.
pub fn now_unix() -> i64 {
    now().timestamp()
}

// ---------------------------------------------------------------------------------------------
// Writing

/// ISO-8601 UTC with seconds (`2026-11-20T03:00:00Z`): database TEXT columns, manifests, slots.
pub fn iso(t: Instant) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// ISO-8601 UTC with milliseconds (`2026-11-20T03:00:00.000Z`): observation times of images.
pub fn iso_millis(t: Instant) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// ISO-8601 UTC with microseconds, fixed width so that text order is time order (the queue's).
pub fn iso_micros(t: Instant) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// A FITS DATE-OBS value (`2026-11-20T03:00:00.000`, UTC implied, no zone letter).
pub fn fits_date(t: Instant) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
}

/// The UTC day (`2026-11-20`).
pub fn date(t: Instant) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// A compact stamp for names (`20261120T030000`).
pub fn compact(t: Instant) -> String {
    t.format("%Y%m%dT%H%M%S").to_string()
}

// ---------------------------------------------------------------------------------------------
// MJD

/// MJD (UTC) of `t`.
pub fn mjd(t: Instant) -> f64 {
    t.timestamp() as f64 / 86_400.0
        + f64::from(t.timestamp_subsec_nanos()) * 1e-9 / 86_400.0
        + MJD_UNIX_EPOCH
}

/// The instant of an MJD (UTC), rounded to the microsecond. Refuses what is not finite or lies
/// outside MJD 0 (1858-11-17) .. 2 900 000 (year ~9798).
pub fn from_mjd(mjd: f64) -> Result<Instant, TimeError> {
    if !(mjd.is_finite() && (0.0..=2_900_000.0).contains(&mjd)) {
        return Err(TimeError::Mjd(mjd));
    }
    let micros = ((mjd - MJD_UNIX_EPOCH) * 86_400.0 * 1e6).round();
    DateTime::from_timestamp_micros(micros as i64).ok_or(TimeError::Mjd(mjd))
}

// ---------------------------------------------------------------------------------------------
// Reading

/// A FITS DATE-OBS: `YYYY-MM-DD[Thh:mm:ss[.sss]]` (ISO, optional trailing Z, a space allowed for
/// the T), `YYYYMMDD`, or the old `DD/MM/YY` form (19YY, as the FITS standard defines it).
pub fn parse_date_obs(s: &str) -> Result<Instant, TimeError> {
    let bad = || TimeError::Date(s.to_string());
    let t = s.trim();
    let t = t.strip_suffix('Z').unwrap_or(t);
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M:%S%.f",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(t.and_utc());
        }
    }
    for fmt in ["%Y-%m-%d", "%Y%m%d"] {
        if let Ok(d) = NaiveDate::parse_from_str(t, fmt) {
            return Ok(d.and_time(NaiveTime::MIN).and_utc());
        }
    }
    let parts: Vec<&str> = t.split('/').collect();
    if let [d, m, y] = parts[..] {
        let (d, m, y): (u32, u32, i32) = (
            d.parse().map_err(|_| bad())?,
            m.parse().map_err(|_| bad())?,
            y.parse().map_err(|_| bad())?,
        );
        if !(0..100).contains(&y) {
            return Err(bad());
        }
        let day = NaiveDate::from_ymd_opt(1900 + y, m, d).ok_or_else(bad)?;
        return Ok(day.and_time(NaiveTime::MIN).and_utc());
    }
    Err(bad())
}

/// A FITS TIME-OBS (`hh:mm:ss[.sss]`).
pub fn parse_time_of_day(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s.trim(), "%H:%M:%S%.f").ok()
}

/// A time as the command line takes it: an MJD number, a DATE-OBS form, ISO-8601 without seconds
/// (`2026-11-20T03:00Z`) or RFC 3339 with an offset (converted to UTC).
pub fn parse_time(s: &str) -> Result<Instant, TimeError> {
    let t = s.trim();
    let number = t.parse::<f64>().ok();
    if let Some(t) = number.and_then(|m| from_mjd(m).ok()) {
        return Ok(t);
    }
    if let Ok(t) = parse_date_obs(t) {
        return Ok(t);
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(t.strip_suffix('Z').unwrap_or(t), "%Y-%m-%dT%H:%M")
    {
        return Ok(t.and_utc());
    }
    match number {
        Some(m) => Err(TimeError::Mjd(m)),
        None => parse_rfc3339(t).ok_or_else(|| TimeError::Time(s.to_string())),
    }
}

/// An RFC 3339 time (any offset), as stored by the database and the queue.
pub fn parse_rfc3339(s: &str) -> Option<Instant> {
    DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The UTC day `YYYY-MM-DD` at 00:00.
pub fn parse_day(s: &str) -> Result<Instant, TimeError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map(|d| d.and_time(NaiveTime::MIN).and_utc())
        .map_err(|_| TimeError::Date(s.to_string()))
}

/// A duration: `90s`, `30m` (or `30min`), `24h`, `7d`, or a bare number of seconds; positive and
/// at most [`MAX_DURATION_S`].
pub fn parse_duration(s: &str) -> Result<std::time::Duration, TimeError> {
    let t = s.trim();
    let bad = || TimeError::Duration(s.to_string());
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return Err(bad()),
    };
    let secs = n * scale;
    if secs.is_nan() {
        return Err(bad());
    }
    if secs <= 0.0 {
        return Err(TimeError::NotPositive(s.to_string()));
    }
    if secs > MAX_DURATION_S {
        return Err(TimeError::TooLong(s.to_string()));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// A std duration as a chrono duration for arithmetic on instants, capped at [`MAX_DURATION_S`]
/// so that the sum cannot overflow.
pub fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    let cap = std::time::Duration::from_secs_f64(MAX_DURATION_S);
    chrono::Duration::from_std(d.min(cap)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn durations_parse_and_are_bounded() {
        assert_eq!(parse_duration("30m").unwrap().as_secs(), 1800);
        assert_eq!(parse_duration("2").unwrap().as_secs(), 2);
        assert_eq!(parse_duration("90min").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("1d").unwrap().as_secs(), 86_400);
        assert_eq!(parse_duration("0.5s").unwrap().as_millis(), 500);
        assert!(matches!(
            parse_duration("-1s"),
            Err(TimeError::NotPositive(_))
        ));
        assert!(matches!(
            parse_duration("0h"),
            Err(TimeError::NotPositive(_))
        ));
        assert!(matches!(
            parse_duration("5 parsecs"),
            Err(TimeError::Duration(_))
        ));
        for huge in ["99999999999999999999h", "3661d", "1000000000000"] {
            assert!(
                matches!(parse_duration(huge), Err(TimeError::TooLong(_))),
                "{huge}"
            );
        }
        assert!(parse_duration("NaN").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn date_obs_forms() {
        let want = Utc.with_ymd_and_hms(2026, 11, 20, 3, 4, 5).unwrap();
        for s in [
            "2026-11-20T03:04:05",
            "2026-11-20T03:04:05Z",
            "2026-11-20 03:04:05.0",
        ] {
            assert_eq!(parse_date_obs(s).unwrap(), want, "{s}");
        }
        let day = Utc.with_ymd_and_hms(1993, 4, 17, 0, 0, 0).unwrap();
        assert_eq!(parse_date_obs("19930417").unwrap(), day);
        assert_eq!(parse_date_obs("1993-04-17").unwrap(), day);
        assert_eq!(parse_date_obs("17/04/93").unwrap(), day);
        for bad in [
            "",
            "yesterday",
            "2026-13-01",
            "2026-02-30T00:00:00",
            "2026-11-20T25:00:00",
            "31/02/93",
            "1/1/1993",
            "2026-11-20T03:04:05+01:00x",
        ] {
            assert!(parse_date_obs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_times() {
        assert_eq!(
            iso(parse_time("2026-11-20T03:00Z").unwrap()),
            "2026-11-20T03:00:00Z"
        );
        assert_eq!(
            parse_time("61000").unwrap(),
            parse_time("2025-11-21T00:00:00").unwrap()
        );
        assert_eq!(
            iso(parse_time("2026-11-20T04:00:00+01:00").unwrap()),
            "2026-11-20T03:00:00Z"
        );
        assert!(parse_time("1e300").is_err());
        assert!(parse_time("NaN").is_err());
        assert!(parse_time("soon").is_err());
        assert_eq!(iso(parse_time("20261120").unwrap()), "2026-11-20T00:00:00Z");
    }

    #[test]
    fn mjd_round_trip_and_formats() {
        let t = Utc.with_ymd_and_hms(2000, 1, 1, 12, 0, 0).unwrap();
        assert!((mjd(t) - 51_544.5).abs() < 1e-12);
        assert_eq!(from_mjd(51_544.5).unwrap(), t);
        assert_eq!(iso_millis(t), "2000-01-01T12:00:00.000Z");
        assert_eq!(iso_micros(t), "2000-01-01T12:00:00.000000Z");
        assert_eq!(fits_date(t), "2000-01-01T12:00:00.000");
        assert_eq!(compact(t), "20000101T120000");
        assert_eq!(date(t), "2000-01-01");
        assert!(from_mjd(f64::NAN).is_err());
        assert!(from_mjd(-1.0).is_err());
    }
}
