//! The forbidden-content filter (SPEC §2, §5): every outgoing body is checked against
//! the pack's forbidden terms (whole words, any case) and patterns (regular
//! expressions). The healthcare pack uses it as its PHI filter: SSN-like numbers,
//! medical-record numbers and medical terms. A body that matches is never sent.

use regex::{RegexBuilder, RegexSet, RegexSetBuilder};

/// A compiled filter: every rule in one [`RegexSet`], so a body is scanned once however
/// many rules the pack has (it runs on every outgoing message). Two filters are equal
/// when built from the same rules.
#[derive(Debug, Clone, Default)]
pub struct ContentFilter {
    /// How each rule is named in escalations ("term:diagnosis", "pattern:ssn"), in the
    /// set's order.
    names: Vec<String>,
    set: Option<RegexSet>,
}

impl PartialEq for ContentFilter {
    fn eq(&self, other: &Self) -> bool {
        let patterns = |f: &ContentFilter| f.set.as_ref().map(|s| s.patterns().to_vec());
        self.names == other.names && patterns(self) == patterns(other)
    }
}

/// A rule that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {reason}")]
pub struct FilterError {
    pub name: String,
    pub reason: String,
}

impl ContentFilter {
    /// Builds a filter from whole-word terms and named patterns.
    pub fn new<'a>(
        terms: impl IntoIterator<Item = &'a str>,
        patterns: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, FilterError> {
        let mut names = Vec::new();
        let mut sources = Vec::new();
        for term in terms {
            let term = term.trim();
            if term.is_empty() {
                return Err(FilterError {
                    name: "term".to_string(),
                    reason: "an empty term would match nothing useful".to_string(),
                });
            }
            names.push(format!("term:{}", term.to_lowercase()));
            sources.push(format!(r"\b{}\b", regex::escape(term)));
        }
        for (name, pattern) in patterns {
            // Compiled alone first, so an error names its rule.
            RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| FilterError {
                    name: format!("pattern:{name}"),
                    reason: e.to_string(),
                })?;
            names.push(format!("pattern:{name}"));
            sources.push(pattern.to_string());
        }
        if sources.is_empty() {
            return Ok(Self::default());
        }
        let set = RegexSetBuilder::new(&sources)
            .case_insensitive(true)
            .size_limit(1 << 22)
            .build()
            .map_err(|e| FilterError {
                name: "forbidden_content".to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            names,
            set: Some(set),
        })
    }

    /// The first rule `body` breaks, by name; `None` when it may be sent.
    pub fn violation(&self, body: &str) -> Option<&str> {
        let first = self.set.as_ref()?.matches(body).iter().next()?;
        self.names.get(first).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phi() -> ContentFilter {
        ContentFilter::new(
            ["diagnosis", "prescription", "treatment"],
            [
                ("ssn", r"\b\d{3}-\d{2}-\d{4}\b"),
                ("mrn", r"\bMRN[:#\s]*\d{4,}\b"),
            ],
        )
        .expect("compiles")
    }

    #[test]
    fn terms_match_whole_words_in_any_case() {
        let f = phi();
        assert_eq!(
            f.violation("Your DIAGNOSIS is ready"),
            Some("term:diagnosis")
        );
        assert_eq!(
            f.violation("Bring your prescription."),
            Some("term:prescription")
        );
        assert_eq!(f.violation("Diagnosisless text"), None, "not a whole word");
        assert_eq!(f.violation("See you Tue at 2:30 PM"), None);
    }

    #[test]
    fn patterns_catch_ssn_and_record_numbers() {
        let f = phi();
        assert_eq!(f.violation("SSN 123-45-6789"), Some("pattern:ssn"));
        assert_eq!(f.violation("mrn: 0012345"), Some("pattern:mrn"));
        assert_eq!(
            f.violation("Call +1 555-123-4567"),
            None,
            "a phone is not an SSN"
        );
    }

    #[test]
    fn a_bad_pattern_names_itself() {
        let err = ContentFilter::new([], [("broken", "(")]).unwrap_err();
        assert_eq!(err.name, "pattern:broken");
    }
}
