//! GuardDuty's severity: a JSON double from 1.0 to 10.0, read as Low / Medium / High / Critical.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A finding's numeric severity (`severity` in the finding JSON).
///
/// Serialises whole values without a fractional part (`8`, not `8.0`), as the AWS example findings
/// print them; JSON does not distinguish the two, and this keeps parsed findings re-serialising
/// unchanged.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Severity(pub f64);

/// The four bands of GuardDuty's current severity scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SeverityLevel {
    /// 1.0 – 3.9: attempted suspicious activity that did not compromise anything.
    Low,
    /// 4.0 – 6.9: deviation from normal behaviour, possibly a compromise.
    Medium,
    /// 7.0 – 8.9: resource compromised and actively misused.
    High,
    /// 9.0 – 10.0: an attack sequence in progress or recently completed.
    Critical,
}

impl Severity {
    /// The band this value falls in. Values under 1.0 (the retired 0.1-based scale) count as Low,
    /// values above 10.0 as Critical, so every number has a label.
    pub fn level(self) -> SeverityLevel {
        match self.0 {
            v if v >= 9.0 => SeverityLevel::Critical,
            v if v >= 7.0 => SeverityLevel::High,
            v if v >= 4.0 => SeverityLevel::Medium,
            _ => SeverityLevel::Low,
        }
    }

    /// `"Low"`, `"Medium"`, `"High"` or `"Critical"`.
    pub fn label(self) -> &'static str {
        self.level().label()
    }
}

impl SeverityLevel {
    pub const ALL: [SeverityLevel; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    pub fn label(self) -> &'static str {
        match self {
            Self::Low => "Low",
            Self::Medium => "Medium",
            Self::High => "High",
            Self::Critical => "Critical",
        }
    }

    /// The numeric value Ward emits for a finding of this level when the detector has no finer
    /// grading; 2 / 5 / 8 / 9 are the values AWS's own example findings carry.
    pub fn default_severity(self) -> Severity {
        Severity(match self {
            Self::Low => 2.0,
            Self::Medium => 5.0,
            Self::High => 8.0,
            Self::Critical => 9.0,
        })
    }

    /// Inclusive lower bound and exclusive upper bound of the band (Critical's upper bound is 10.0
    /// inclusive).
    pub fn range(self) -> (f64, f64) {
        match self {
            Self::Low => (1.0, 4.0),
            Self::Medium => (4.0, 7.0),
            Self::High => (7.0, 9.0),
            Self::Critical => (9.0, 10.0),
        }
    }
}

impl fmt::Display for SeverityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl From<SeverityLevel> for Severity {
    fn from(level: SeverityLevel) -> Self {
        level.default_severity()
    }
}

// Largest integer an f64 holds exactly; beyond it the integer shortcut would change the value.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

impl Serialize for Severity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let value = self.0;
        if value.fract() == 0.0 && value.abs() < EXACT_INTEGER_LIMIT {
            serializer.serialize_i64(value as i64)
        } else {
            serializer.serialize_f64(value)
        }
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        f64::deserialize(deserializer).map(Severity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_guardduty_bands() {
        let cases = [
            (1.0, SeverityLevel::Low),
            (2.0, SeverityLevel::Low),
            (3.9, SeverityLevel::Low),
            (4.0, SeverityLevel::Medium),
            (6.9, SeverityLevel::Medium),
            (7.0, SeverityLevel::High),
            (8.9, SeverityLevel::High),
            (9.0, SeverityLevel::Critical),
            (10.0, SeverityLevel::Critical),
            (0.1, SeverityLevel::Low),
        ];
        for (value, level) in cases {
            assert_eq!(Severity(value).level(), level, "{value}");
        }
        assert_eq!(Severity(8.0).label(), "High");
    }

    #[test]
    fn default_values_sit_inside_their_band() {
        for level in SeverityLevel::ALL {
            assert_eq!(level.default_severity().level(), level);
            let (low, high) = level.range();
            let value = level.default_severity().0;
            assert!(value >= low && (value < high || level == SeverityLevel::Critical));
        }
    }

    #[test]
    fn whole_values_serialise_as_integers_and_fractions_stay() {
        assert_eq!(serde_json::to_string(&Severity(8.0)).unwrap(), "8");
        assert_eq!(serde_json::to_string(&Severity(5.5)).unwrap(), "5.5");
        let parsed: Severity = serde_json::from_str("2").unwrap();
        assert_eq!(parsed, Severity(2.0));
        let parsed: Severity = serde_json::from_str("8.0").unwrap();
        assert_eq!(parsed, Severity(8.0));
        assert!(serde_json::from_str::<Severity>("\"8\"").is_err());
    }
}
