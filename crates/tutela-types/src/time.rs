//! Time as a value: instants, local calendar days and clock-of-day, all supplied by the caller.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;

/// An instant, in whole seconds since the Unix epoch (UTC).
///
/// The core never asks "what time is it?"; the gateway reads its clock once per request and
/// passes the value down. Serialised as RFC 3339 (`2026-09-01T09:00:00Z`) so golden cases and
/// audit records stay readable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Errors from parsing time values.
#[derive(Debug, thiserror::Error)]
pub enum TimeError {
    /// The text is not an RFC 3339 instant.
    #[error("`{0}` is not an RFC 3339 timestamp such as `2026-09-01T09:00:00Z`")]
    Rfc3339(String),
    /// The text is not a `HH:MM` clock time.
    #[error("`{0}` is not a clock time such as `22:00`")]
    ClockTime(String),
}

impl Timestamp {
    /// The instant `secs` seconds after the Unix epoch.
    pub const fn from_unix(secs: i64) -> Self {
        Self(secs)
    }

    /// Seconds since the Unix epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 instant, such as `2026-09-01T09:00:00Z` or `2026-09-01T17:00:00+08:00`.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        time::OffsetDateTime::parse(text, &Rfc3339)
            .map(|t| Self(t.unix_timestamp()))
            .map_err(|_| TimeError::Rfc3339(text.to_owned()))
    }

    /// This instant plus `minutes` (negative to go back).
    pub const fn plus_minutes(self, minutes: i64) -> Self {
        Self(self.0.saturating_add(minutes.saturating_mul(60)))
    }

    /// This instant plus `secs` seconds.
    pub const fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// Whole seconds from `earlier` to `self`; zero if `earlier` is later.
    pub const fn secs_since(self, earlier: Timestamp) -> i64 {
        let d = self.0.saturating_sub(earlier.0);
        if d < 0 { 0 } else { d }
    }

    /// The calendar day of this instant at a fixed UTC offset (in minutes, east positive).
    pub fn local_date(self, utc_offset_minutes: i32) -> LocalDate {
        let local = self.0.saturating_add(i64::from(utc_offset_minutes) * 60);
        LocalDate(local.div_euclid(86_400) as i32)
    }

    /// Minutes since local midnight at a fixed UTC offset (0..1440).
    pub fn local_minute_of_day(self, utc_offset_minutes: i32) -> u16 {
        let local = self.0.saturating_add(i64::from(utc_offset_minutes) * 60);
        (local.rem_euclid(86_400) / 60) as u16
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match time::OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
        {
            Some(s) => f.write_str(&s),
            None => write!(f, "@{}", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Timestamp::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A local calendar day, as days since 1970-01-01 in the user's time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LocalDate(pub i32);

/// A time of day, in minutes since midnight (0..1440), written `HH:MM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Clock(u16);

impl Clock {
    /// `hours:minutes`; `None` when out of range.
    pub const fn new(hours: u16, minutes: u16) -> Option<Self> {
        if hours < 24 && minutes < 60 {
            Some(Self(hours * 60 + minutes))
        } else {
            None
        }
    }

    /// Minutes since midnight.
    pub const fn minute_of_day(self) -> u16 {
        self.0
    }

    /// Parses `HH:MM`.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        let err = || TimeError::ClockTime(text.to_owned());
        let (h, m) = text.split_once(':').ok_or_else(err)?;
        if h.len() != 2 || m.len() != 2 {
            return Err(err());
        }
        let h: u16 = h.parse().map_err(|_| err())?;
        let m: u16 = m.parse().map_err(|_| err())?;
        Self::new(h, m).ok_or_else(err)
    }
}

impl fmt::Display for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

impl Serialize for Clock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Clock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Clock::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let t = Timestamp::parse("2026-09-01T17:00:00+08:00").unwrap();
        assert_eq!(t.to_string(), "2026-09-01T09:00:00Z");
        assert_eq!(Timestamp::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn local_day_and_minute_follow_the_offset() {
        let t = Timestamp::parse("2026-09-01T23:30:00Z").unwrap();
        assert_eq!(t.local_minute_of_day(0), 23 * 60 + 30);
        assert_eq!(t.local_minute_of_day(8 * 60), 7 * 60 + 30);
        assert_eq!(t.local_date(8 * 60).0, t.local_date(0).0 + 1);
        let before_epoch = Timestamp::from_unix(-60);
        assert_eq!(before_epoch.local_date(0).0, -1);
        assert_eq!(before_epoch.local_minute_of_day(0), 1439);
    }

    #[test]
    fn clock_parses_only_valid_times() {
        assert_eq!(Clock::parse("22:00").unwrap().minute_of_day(), 1320);
        for bad in ["24:00", "7:00", "12:60", "noon", "12-00"] {
            assert!(Clock::parse(bad).is_err(), "{bad}");
        }
    }
}
