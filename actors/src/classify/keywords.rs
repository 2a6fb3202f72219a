//! Deterministic carrier keywords (SPEC §4): opt-out, opt-in and help.
//!
//! A keyword counts only when it is the whole message: the text is case-folded, letters
//! and digits are kept, every other character (punctuation, emoji, quotes) is dropped and
//! whitespace separates words. So "STOP!!", "stop.", "🛑 STOP", "\"STOP\"" and "Opt-out"
//! are keywords, while "Stop texting me" or "I need to cancel my appointment" are not:
//! those go to the intent classifier, as Twilio itself only honours exact keywords.

/// What a keyword reply asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordAction {
    /// Stop all messages. `bare_cancel` is set for a bare "CANCEL": the customer may
    /// mean the appointment, so the caller must also raise an escalation.
    OptOut { bare_cancel: bool },
    /// Resume messages.
    OptIn,
    /// Send the help text.
    Help,
}

/// Single-word opt-out keywords, after normalisation.
const OPT_OUT: &[&str] = &[
    "stop",
    "stopall",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "revoke",
    "optout",
];
/// Two-word spellings of opt-out keywords.
const OPT_OUT_PAIRS: &[(&str, &str)] = &[("stop", "all"), ("opt", "out")];
const OPT_IN: &[&str] = &["start", "unstop"];
const HELP: &[&str] = &["help", "info"];

/// Longest word any keyword has, and the most words a keyword message has: anything
/// longer is not a keyword, and is rejected without reading the whole text.
const MAX_WORD_CHARS: usize = 16;
const MAX_WORDS: usize = 2;

/// The keyword action of a whole message, if it is one. `opted_out` tells whether the
/// sender is currently opted out: only then does a bare "YES" mean opt-in.
pub fn keyword_action(text: &str, opted_out: bool) -> Option<KeywordAction> {
    let words = keyword_words(text)?;
    match words.as_slice() {
        [word] => {
            let word = word.as_str();
            if OPT_OUT.contains(&word) {
                Some(KeywordAction::OptOut {
                    bare_cancel: word == "cancel",
                })
            } else if OPT_IN.contains(&word) || (opted_out && word == "yes") {
                Some(KeywordAction::OptIn)
            } else if HELP.contains(&word) {
                Some(KeywordAction::Help)
            } else {
                None
            }
        }
        [first, second] => OPT_OUT_PAIRS
            .iter()
            .any(|(a, b)| first == a && second == b)
            .then_some(KeywordAction::OptOut { bare_cancel: false }),
        _ => None,
    }
}

/// The message's words (lowercase letters and digits), or `None` as soon as it is clear
/// the message is too long to be a keyword.
fn keyword_words(text: &str) -> Option<Vec<String>> {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut current_chars = 0usize;
    for c in text.chars() {
        if c.is_whitespace() {
            if !current.is_empty() {
                if words.len() == MAX_WORDS {
                    return None;
                }
                words.push(std::mem::take(&mut current));
                current_chars = 0;
            }
        } else if c.is_alphanumeric() {
            current_chars += 1;
            if current_chars > MAX_WORD_CHARS {
                return None;
            }
            current.extend(c.to_lowercase());
        }
    }
    if !current.is_empty() {
        if words.len() == MAX_WORDS {
            return None;
        }
        words.push(current);
    }
    (!words.is_empty()).then_some(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_keywords_opt_out_variants() {
        for text in [
            "STOP",
            "stop.",
            "STOP!!",
            " Stop ",
            "🛑 STOP",
            "\"STOP\"",
            "stopall",
            "stop all",
            "UNSUBSCRIBE",
            "end",
            "Quit",
            "REVOKE",
            "OPTOUT",
            "opt out",
            "Opt-out",
        ] {
            assert_eq!(
                keyword_action(text, false),
                Some(KeywordAction::OptOut { bare_cancel: false }),
                "{text:?}"
            );
        }
        for text in ["CANCEL", "cancel", "Cancel.", "CANCEL!!"] {
            assert_eq!(
                keyword_action(text, false),
                Some(KeywordAction::OptOut { bare_cancel: true }),
                "{text:?}"
            );
        }
    }

    #[test]
    fn classify_keywords_not_whole_message() {
        for text in [
            "Stop texting me",
            "I need to cancel my appointment",
            "cancel it",
            "please stop",
            "stop stop",
            "st op",
            "",
            "   ",
            "👍",
            "cancelar",
        ] {
            assert_eq!(keyword_action(text, false), None, "{text:?}");
        }
    }

    #[test]
    fn classify_keywords_opt_in_and_help() {
        assert_eq!(keyword_action("START", false), Some(KeywordAction::OptIn));
        assert_eq!(keyword_action("unstop!", false), Some(KeywordAction::OptIn));
        assert_eq!(keyword_action("YES", true), Some(KeywordAction::OptIn));
        assert_eq!(keyword_action("YES", false), None);
        assert_eq!(keyword_action("help?", false), Some(KeywordAction::Help));
        assert_eq!(keyword_action("INFO", true), Some(KeywordAction::Help));
    }
}
