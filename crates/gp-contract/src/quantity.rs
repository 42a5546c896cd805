//! Kubernetes resource quantities (`512Mi`, `250m`, `1.5`, `2e3`), parsed to a number of base units.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::ids::Invalid;

/// A quantity as written, plus its value in base units (bytes for memory, cores for cpu).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Quantity {
    text: String,
    #[serde(skip)]
    value: f64,
}

const SUFFIXES: &[(&str, f64)] = &[
    ("Ki", 1024.0),
    ("Mi", 1_048_576.0),
    ("Gi", 1_073_741_824.0),
    ("Ti", 1_099_511_627_776.0),
    ("Pi", 1_125_899_906_842_624.0),
    ("Ei", 1_152_921_504_606_846_976.0),
    ("n", 1e-9),
    ("u", 1e-6),
    ("m", 1e-3),
    ("k", 1e3),
    ("M", 1e6),
    ("G", 1e9),
    ("T", 1e12),
    ("P", 1e15),
    ("E", 1e18),
];

impl Quantity {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Value in base units: bytes for memory, cores for cpu.
    #[must_use]
    pub fn value(&self) -> f64 {
        self.value
    }

    /// Human rendering of a byte count (for messages).
    #[must_use]
    pub fn describe_bytes(bytes: f64) -> String {
        const UNITS: &[(&str, f64)] =
            &[("Gi", 1_073_741_824.0), ("Mi", 1_048_576.0), ("Ki", 1024.0)];
        for (u, f) in UNITS {
            if bytes >= *f {
                return format!("{}{u}", trim_float(bytes / f));
            }
        }
        format!("{} bytes", trim_float(bytes))
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

impl FromStr for Quantity {
    type Err = Invalid;

    fn from_str(s: &str) -> Result<Self, Invalid> {
        let invalid = |hint: String| Invalid {
            message: format!("`{s}` is not a Kubernetes quantity"),
            hint: Some(hint),
        };
        let body = s.strip_prefix('+').unwrap_or(s);
        if body.starts_with('-') {
            return Err(Invalid {
                message: format!("quantity `{s}` is negative"),
                hint: Some("resources must be positive".to_owned()),
            });
        }
        let num_end = body
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(body.len());
        let (num, suffix) = body.split_at(num_end);
        let number_ok = !num.is_empty() && num != "." && num.matches('.').count() <= 1;
        if !number_ok {
            return Err(invalid(
                "write a number with an optional unit, e.g. `512Mi`, `1Gi`, `250m` or `0.5`".into(),
            ));
        }
        let Ok(n) = num.parse::<f64>() else {
            return Err(invalid(
                "write a number with an optional unit, e.g. `512Mi` or `250m`".into(),
            ));
        };
        let factor = if suffix.is_empty() {
            1.0
        } else if let Some((_, f)) = SUFFIXES.iter().find(|(u, _)| *u == suffix) {
            *f
        } else if let Some(exp) = suffix.strip_prefix(['e', 'E']) {
            match exp.parse::<i32>() {
                Ok(e) if (-30..=30).contains(&e) => 10f64.powi(e),
                _ => {
                    return Err(invalid(
                        "exponents must be small integers, e.g. `1e3`".into(),
                    ));
                }
            }
        } else {
            return Err(invalid(suffix_hint(num, suffix)));
        };
        Ok(Self {
            text: s.to_owned(),
            value: n * factor,
        })
    }
}

fn suffix_hint(num: &str, suffix: &str) -> String {
    let fixed = match suffix {
        "MB" | "mb" | "Mb" | "mi" | "MiB" => Some("Mi"),
        "GB" | "gb" | "Gb" | "gi" | "GiB" => Some("Gi"),
        "KB" | "kb" | "Kb" | "ki" | "KiB" | "K" => Some("Ki"),
        "TB" | "TiB" => Some("Ti"),
        _ => None,
    };
    match fixed {
        Some(u) => format!("Kubernetes writes `{suffix}` as `{u}`: `{num}{u}`"),
        None => format!(
            "unit `{suffix}` is unknown; use one of Ki, Mi, Gi, Ti (powers of 1024), k, M, G, T (powers of 1000) or m (milli)"
        ),
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Quantity {
    fn schema_name() -> Cow<'static, str> {
        "Quantity".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Kubernetes quantity, e.g. `512Mi`, `1Gi` (memory) or `250m`, `0.5`, `2` (cpu).",
            "anyOf": [
                {"type": "string", "pattern": "^\\+?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][-+]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$"},
                {"type": "number", "exclusiveMinimum": 0}
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> f64 {
        s.parse::<Quantity>().unwrap().value()
    }

    #[test]
    fn parses_units() {
        assert!((q("512Mi") - 536_870_912.0).abs() < 1e-6);
        assert!((q("250m") - 0.25).abs() < 1e-12);
        assert!((q("1.5") - 1.5).abs() < 1e-12);
        assert!((q("2e3") - 2000.0).abs() < 1e-9);
        assert!((q("1G") - 1e9).abs() < 1e-3);
        assert!((q(".5") - 0.5).abs() < 1e-12);
    }

    #[test]
    fn explains_common_mistakes() {
        let e = "512MB".parse::<Quantity>().unwrap_err();
        assert_eq!(
            e.hint.as_deref(),
            Some("Kubernetes writes `MB` as `Mi`: `512Mi`")
        );
        assert!("-1".parse::<Quantity>().is_err());
        assert!("abc".parse::<Quantity>().is_err());
        assert!("1.2.3".parse::<Quantity>().is_err());
        assert!("1e999".parse::<Quantity>().is_err());
    }

    #[test]
    fn describes_bytes() {
        assert_eq!(Quantity::describe_bytes(0.512), "0.512 bytes");
        assert_eq!(Quantity::describe_bytes(536_870_912.0), "512Mi");
    }
}
