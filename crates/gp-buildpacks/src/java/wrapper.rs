//! The Gradle wrapper's properties: shared by detection and the Java buildpack's build.

/// The Gradle wrapper's `distributionUrl` and `distributionSha256Sum` (with the URL's line), `\:` unescaped.
#[must_use]
pub fn wrapper_distribution(text: &str) -> (Option<(String, usize)>, Option<String>) {
    let mut url = None;
    let mut sum = None;
    for (i, l) in text.lines().enumerate() {
        let Some((k, v)) = l.split_once('=') else {
            continue;
        };
        let v = v.trim().replace("\\:", ":").replace("\\=", "=");
        match k.trim() {
            "distributionUrl" => url = Some((v, i + 1)),
            "distributionSha256Sum" => sum = Some(v),
            _ => {}
        }
    }
    (url, sum)
}

#[cfg(test)]
mod tests {
    use super::wrapper_distribution;

    #[test]
    fn wrapper_properties() {
        let (url, sum) = wrapper_distribution(
            "distributionBase=GRADLE_USER_HOME\ndistributionUrl=https\\://services.gradle.org/distributions/gradle-8.10-bin.zip\ndistributionSha256Sum=abc\n",
        );
        assert_eq!(
            url,
            Some((
                "https://services.gradle.org/distributions/gradle-8.10-bin.zip".into(),
                2
            ))
        );
        assert_eq!(sum.as_deref(), Some("abc"));
    }
}
