//! Buildpack API and Platform API versions: `<major>.<minor>` or `<major>` (meaning `<major>.0`),
//! ordered numerically, with the range this platform supports.

use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why an API version string is not valid or not supported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error(
        "invalid {kind} version `{value}`: expected `<major>.<minor>` or `<major>` with unsigned integers"
    )]
    Malformed { kind: &'static str, value: String },
    #[error(
        "{kind} {version} is not supported: this platform supports {kind} {min} to {max}; use a buildpack or lifecycle built for that range"
    )]
    Unsupported {
        kind: &'static str,
        version: ApiVersion,
        min: ApiVersion,
        max: ApiVersion,
    },
}

/// A `<major>.<minor>` API version. Display always writes both parts (`1` displays as `1.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u64,
    pub minor: u64,
}

impl ApiVersion {
    #[must_use]
    pub const fn new(major: u64, minor: u64) -> Self {
        Self { major, minor }
    }

    fn parse(kind: &'static str, value: &str) -> Result<Self, ApiError> {
        // Digits only (no sign, no spaces); leading zeros are tolerated: the spec only asks for
        // unsigned integers.
        let number = |part: &str| {
            (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u64>().ok())
                .flatten()
        };
        let malformed = || ApiError::Malformed {
            kind,
            value: value.to_owned(),
        };
        let (major, minor) = match value.split_once('.') {
            Some((major, minor)) => (major, Some(minor)),
            None => (value, None),
        };
        let major = number(major).ok_or_else(malformed)?;
        let minor = match minor {
            Some(minor) => number(minor).ok_or_else(malformed)?,
            None => 0,
        };
        Ok(Self { major, minor })
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

macro_rules! api_type {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $min:expr, $max:expr) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(pub ApiVersion);

        impl $name {
            /// Oldest version this platform implements.
            pub const MIN_SUPPORTED: Self = Self($min);
            /// Newest version this platform implements.
            pub const MAX_SUPPORTED: Self = Self($max);

            #[must_use]
            pub const fn new(major: u64, minor: u64) -> Self {
                Self(ApiVersion::new(major, minor))
            }

            /// The supported range, inclusive.
            #[must_use]
            pub const fn supported() -> RangeInclusive<Self> {
                Self::MIN_SUPPORTED..=Self::MAX_SUPPORTED
            }

            #[must_use]
            pub fn is_supported(self) -> bool {
                Self::supported().contains(&self)
            }

            /// Errors with the supported range when this version is outside it.
            pub fn check_supported(self) -> Result<Self, ApiError> {
                if self.is_supported() {
                    Ok(self)
                } else {
                    Err(ApiError::Unsupported {
                        kind: $kind,
                        version: self.0,
                        min: Self::MIN_SUPPORTED.0,
                        max: Self::MAX_SUPPORTED.0,
                    })
                }
            }

            /// Whether this version is at least `major.minor` (for "since API x.y" rules).
            #[must_use]
            pub fn at_least(self, major: u64, minor: u64) -> bool {
                self.0 >= ApiVersion::new(major, minor)
            }
        }

        impl FromStr for $name {
            type Err = ApiError;
            fn from_str(value: &str) -> Result<Self, ApiError> {
                ApiVersion::parse($kind, value).map(Self)
            }
        }

        impl TryFrom<String> for $name {
            type Error = ApiError;
            fn try_from(value: String) -> Result<Self, ApiError> {
                value.parse()
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

api_type!(
    /// The Buildpack API a buildpack or extension declares in its descriptor (`api = "0.10"`).
    /// Supported: 0.7 to 0.12.
    BuildpackApi,
    "Buildpack API",
    ApiVersion::new(0, 7),
    ApiVersion::new(0, 12)
);

api_type!(
    /// The Platform API a platform speaks to the lifecycle (`CNB_PLATFORM_API`).
    /// Supported: 0.7 to 0.15 (the copy of the spec this crate implements is 0.15; 0.7 is the
    /// oldest the reference lifecycle still accepts).
    PlatformApi,
    "Platform API",
    ApiVersion::new(0, 7),
    ApiVersion::new(0, 15)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        assert_eq!(
            "0.12".parse::<BuildpackApi>().unwrap(),
            BuildpackApi::new(0, 12)
        );
        assert_eq!(
            "1".parse::<BuildpackApi>().unwrap(),
            BuildpackApi::new(1, 0)
        );
        assert_eq!("1".parse::<BuildpackApi>().unwrap().to_string(), "1.0");
        assert_eq!(
            "0.07".parse::<PlatformApi>().unwrap(),
            PlatformApi::new(0, 7)
        );
        for bad in [
            "", "1.", ".1", "1.2.3", "1.2-dev", "-1", "+1", "v1", "1..2", " 1",
        ] {
            assert_eq!(
                bad.parse::<BuildpackApi>().unwrap_err(),
                ApiError::Malformed {
                    kind: "Buildpack API",
                    value: bad.to_owned()
                },
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ordering_is_numeric() {
        let v = |s: &str| s.parse::<BuildpackApi>().unwrap();
        assert!(v("0.10") > v("0.9"));
        assert!(v("1") > v("0.12"));
        assert!(v("0.10").at_least(0, 10));
        assert!(!v("0.9").at_least(0, 10));
    }

    #[test]
    fn supported_range() {
        assert!(BuildpackApi::new(0, 7).is_supported());
        assert!(BuildpackApi::new(0, 12).is_supported());
        assert!(!BuildpackApi::new(0, 6).is_supported());
        assert!(PlatformApi::new(0, 15).is_supported());
        assert_eq!(
            BuildpackApi::new(0, 13)
                .check_supported()
                .unwrap_err()
                .to_string(),
            "Buildpack API 0.13 is not supported: this platform supports Buildpack API 0.7 to 0.12; use a buildpack or lifecycle built for that range"
        );
    }
}
