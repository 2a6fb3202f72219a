//! Text normalisation shared by the lexicon rules ([`super::intent`]) and the trained
//! model ([`super::model`]): lowercasing, accent folding, emoji pseudo-words, dropped
//! apostrophes, collapsed letter repeats, clause splitting at punctuation (remembering
//! which clauses are questions), and an edit distance for typos.

/// Only this many characters of a reply are read (an SMS is at most ~1,600).
pub const MAX_CHARS: usize = 2_048;

/// One normalised word and the clause it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub(crate) text: String,
    pub(crate) clause: u32,
}

/// A reply after normalisation.
#[derive(Debug, Clone, Default)]
pub(crate) struct Normalized {
    pub(crate) tokens: Vec<Token>,
    /// The reply contains a question mark (`?` or `¿`).
    pub(crate) question: bool,
    /// The clauses that are questions: ended by `?` or opened by `¿`.
    pub(crate) question_clauses: Vec<u32>,
}

impl Normalized {
    /// Whether clause `clause` is a question.
    pub(crate) fn is_question_clause(&self, clause: u32) -> bool {
        self.question_clauses.contains(&clause)
    }
}

/// Lowercases, folds accents, maps emoji, drops apostrophes, splits into clause-tagged
/// words and collapses repeated letters.
pub(crate) fn normalize(text: &str) -> Normalized {
    let mut out = Normalized::default();
    let mut current = String::new();
    let mut clause = 0u32;
    let flush = |current: &mut String, clause: u32, out: &mut Normalized| {
        if !current.is_empty() {
            out.tokens.push(Token {
                text: collapse_repeats(current),
                clause,
            });
            current.clear();
        }
    };
    for c in text.chars().take(MAX_CHARS) {
        if let Some(word) = emoji_word(c) {
            flush(&mut current, clause, &mut out);
            out.tokens.push(Token {
                text: word.to_string(),
                clause,
            });
        } else if is_ignorable(c) || is_apostrophe(c) {
            continue;
        } else if c.is_alphanumeric() {
            for lower in c.to_lowercase() {
                current.push(fold_accent(lower));
            }
        } else {
            flush(&mut current, clause, &mut out);
            if matches!(c, '?' | '¿') {
                out.question = true;
            }
            if c == '?' && !out.question_clauses.contains(&clause) {
                out.question_clauses.push(clause);
            }
            if matches!(
                c,
                '.' | ',' | '!' | '?' | ';' | ':' | '¿' | '¡' | '\n' | '\r'
            ) {
                clause = clause.saturating_add(1);
            }
            if c == '¿' && !out.question_clauses.contains(&clause) {
                out.question_clauses.push(clause);
            }
        }
    }
    flush(&mut current, clause, &mut out);
    out
}

/// Normalises one lexicon word the way [`normalize`] normalises a reply's words.
pub(crate) fn normalize_word(word: &str) -> String {
    let folded: String = word
        .chars()
        .filter(|c| !is_apostrophe(*c))
        .flat_map(char::to_lowercase)
        .map(fold_accent)
        .collect();
    collapse_repeats(&folded)
}

/// "yesss" → "yes", "cancell" → "cancel"; digits are kept as they are.
fn collapse_repeats(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut previous: Option<char> = None;
    for c in word.chars() {
        if previous == Some(c) && c.is_alphabetic() {
            continue;
        }
        out.push(c);
        previous = Some(c);
    }
    out
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '’' | '‘' | '`' | '´' | 'ʼ')
}

/// Variation selectors, zero-width joiners and skin tones: part of an emoji, no meaning.
fn is_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{FE0E}' | '\u{FE0F}' | '\u{200D}' | '\u{1F3FB}'..='\u{1F3FF}'
    )
}

/// The pseudo-word an emoji stands for, if it means something here.
fn emoji_word(c: char) -> Option<&'static str> {
    match c {
        '👍' | '👌' | '✅' | '✔' | '☑' | '🙏' | '🙌' | '👏' | '💯' | '🤝' | '🆗' | '🤙' => {
            Some("emjyes")
        }
        '👎' | '❌' | '🚫' | '✖' | '❎' | '🙅' => Some("emjno"),
        '🤔' | '❓' | '❔' | '🤷' => Some("emjq"),
        '😊' | '🙂' | '😀' | '😃' | '😄' | '😁' | '☺' | '❤' | '😍' | '🥰' | '💙' | '💕' => {
            Some("emjpol")
        }
        '🛑' => Some("emjstop"),
        _ => None,
    }
}

/// Strips the accents of Latin letters (input already lowercase).
fn fold_accent(c: char) -> char {
    match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'æ' => 'a',
        'ç' | 'ć' | 'č' => 'c',
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ę' => 'e',
        'ì' | 'í' | 'î' | 'ï' | 'ī' => 'i',
        'ñ' | 'ń' => 'n',
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'œ' => 'o',
        'ù' | 'ú' | 'û' | 'ü' | 'ū' => 'u',
        'ý' | 'ÿ' => 'y',
        'ß' => 's',
        _ => c,
    }
}

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
pub(crate) fn edit_distance(a: &[char], b: &[char]) -> usize {
    let width = b.len() + 1;
    let mut rows = vec![0usize; (a.len() + 1) * width];
    let at = |i: usize, j: usize| i * width + j;
    for i in 0..=a.len() {
        rows[at(i, 0)] = i;
    }
    for j in 0..=b.len() {
        rows[at(0, j)] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[at(i - 1, j)] + 1)
                .min(rows[at(i, j - 1)] + 1)
                .min(rows[at(i - 1, j - 1)] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[at(i - 2, j - 2)] + 1);
            }
            rows[at(i, j)] = best;
        }
    }
    rows[at(a.len(), b.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_normalizes_text() {
        let n = normalize("Sí, ahí ESTARÉ!! I'll be thereee 👍🏽");
        let words: Vec<&str> = n.tokens.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(
            words,
            ["si", "ahi", "estare", "il", "be", "there", "emjyes"]
        );
        assert!(!n.question);
        assert!(normalize("¿Puedo?").question);
        let n = normalize("I'll be there. Is there parking?");
        assert!(!n.is_question_clause(n.tokens[0].clause));
        assert!(n.is_question_clause(n.tokens[3].clause));
        let n = normalize("Sí, ¿dónde es");
        assert!(n.is_question_clause(n.tokens[1].clause));
    }

    #[test]
    fn classify_edit_distance_counts_transpositions() {
        let d = |a: &str, b: &str| {
            edit_distance(
                &a.chars().collect::<Vec<_>>(),
                &b.chars().collect::<Vec<_>>(),
            )
        };
        assert_eq!(d("confrim", "confirm"), 1);
        assert_eq!(d("cancle", "cancel"), 1);
        assert_eq!(d("", "abc"), 3);
        assert_eq!(d("same", "same"), 0);
    }
}
