//! A small trained model: multinomial naive Bayes over word, word-bigram and character
//! trigram features of a normalised reply, for confirm / reschedule / cancel / unclear.
//!
//! It complements the lexicon rules of [`super::intent`]: the rules read what they
//! know precisely (negation, precedence between mixed intents), the model carries what
//! the labelled data says about wordings the lexicon lacks (inflections, other
//! languages, typos, via character trigrams) and is combined with the rules as extra
//! evidence, never alone.
//!
//! Features (all hashed to 64 bits, FNV-1a):
//! - each word; a word within [`NEGATION_SCOPE`] words after a negator in the same
//!   clause is marked negated ("not coming" ≠ "coming", "no need to cancel" ≠ "cancel");
//! - each pair of adjacent words in a clause, and the first word of the reply;
//! - each character trigram of each word padded with boundaries (weight
//!   [`CHAR_WEIGHT`]), so "cancelen", "cancelaria" and "cancle" share evidence;
//! - whether the reply is a question.
//!
//! It is trained from labelled lines in the dataset's format ([`NaiveBayes::from_tsv`]);
//! training takes about a millisecond and inference a few microseconds. Keyword lines
//! (opt-out, opt-in, help) are not intents and are skipped. Nothing ships a trained
//! model: the classifier runs on its rules alone until cross-validation shows a gain
//! (`actors/tests/classifier.rs`).

use std::collections::HashMap;

use crate::ports::providers::Intent;

use super::text::{normalize, Normalized};

/// The intents the model scores, in the order of its score arrays.
pub const INTENTS: [Intent; 4] = [
    Intent::Confirm,
    Intent::Reschedule,
    Intent::Cancel,
    Intent::Unclear,
];

/// How many words after a negator are read as negated.
pub const NEGATION_SCOPE: usize = 3;
/// The weight of one character trigram relative to one word.
pub const CHAR_WEIGHT: f32 = 0.25;
/// Additive (Laplace) smoothing of feature counts.
const SMOOTHING: f32 = 0.5;

/// Words that negate the words after them.
const NEGATORS: &[&str] = &[
    "not", "no", "dont", "doesnt", "didnt", "wont", "cant", "cannot", "couldnt", "wouldnt", "isnt",
    "never", "unable", "nunca", "nao", "pas", "ne", "nah", "nope",
];

/// A trained naive Bayes model: per-feature log-likelihoods for each intent.
#[derive(Debug, Clone)]
pub struct NaiveBayes {
    log_likelihood: HashMap<u64, [f32; 4]>,
    log_prior: [f32; 4],
}

impl NaiveBayes {
    /// Trains on dataset text in the `expected<TAB>text[<TAB>lang]` format; comment
    /// lines and keyword labels are skipped.
    pub fn from_tsv(tsv: &str) -> NaiveBayes {
        let examples = tsv
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let mut cols = line.split('\t');
                let intent = intent_of_label(cols.next()?.trim())?;
                Some((intent, cols.next()?))
            });
        NaiveBayes::train(examples)
    }

    /// Trains on labelled replies.
    pub fn train<'a>(examples: impl IntoIterator<Item = (Intent, &'a str)>) -> NaiveBayes {
        let mut counts: HashMap<u64, [f32; 4]> = HashMap::new();
        let mut totals = [0f32; 4];
        let mut docs = [0f32; 4];
        for (intent, text) in examples {
            let k = index(intent);
            docs[k] += 1.0;
            features(&normalize(text), |feature, weight| {
                counts.entry(feature).or_default()[k] += weight;
                totals[k] += weight;
            });
        }
        let vocabulary = counts.len() as f32;
        let all_docs: f32 = docs.iter().sum();
        let log_likelihood = counts
            .into_iter()
            .map(|(feature, c)| {
                let row = std::array::from_fn(|k| {
                    ((c[k] + SMOOTHING) / (totals[k] + SMOOTHING * vocabulary)).ln()
                });
                (feature, row)
            })
            .collect();
        let log_prior = docs.map(|d| ((d + 1.0) / (all_docs + 4.0)).ln());
        NaiveBayes {
            log_likelihood,
            log_prior,
        }
    }

    /// Log posterior probabilities of the four [`INTENTS`] for a normalised reply,
    /// each divided by `temperature` before renormalising (a temperature above 1
    /// tempers naive Bayes' overconfidence).
    pub(crate) fn log_posterior(&self, normalized: &Normalized, temperature: f64) -> [f64; 4] {
        let mut scores = [0f64; 4];
        features(normalized, |feature, weight| {
            if let Some(row) = self.log_likelihood.get(&feature) {
                for (score, l) in scores.iter_mut().zip(row) {
                    *score += f64::from(weight) * f64::from(*l);
                }
            }
        });
        for (score, prior) in scores.iter_mut().zip(self.log_prior) {
            *score = (*score + f64::from(prior)) / temperature.max(1e-6);
        }
        let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let log_total = scores.iter().map(|s| (s - max).exp()).sum::<f64>().ln() + max;
        scores.map(|s| s - log_total)
    }

    /// Posterior probabilities of the four [`INTENTS`] for a reply (for evaluation).
    pub fn probabilities(&self, text: &str) -> [f64; 4] {
        self.log_posterior(&normalize(text), 1.0).map(f64::exp)
    }
}

/// The intent a dataset label stands for; `None` for keyword labels.
pub fn intent_of_label(label: &str) -> Option<Intent> {
    match label {
        "confirm" => Some(Intent::Confirm),
        "reschedule" => Some(Intent::Reschedule),
        "cancel" => Some(Intent::Cancel),
        "unclear" => Some(Intent::Unclear),
        _ => None,
    }
}

/// The position of an intent in the model's score arrays.
pub(crate) fn index(intent: Intent) -> usize {
    match intent {
        Intent::Confirm => 0,
        Intent::Reschedule => 1,
        Intent::Cancel => 2,
        Intent::Unclear => 3,
    }
}

/// Calls `emit(feature hash, weight)` for every feature of a normalised reply.
fn features(normalized: &Normalized, mut emit: impl FnMut(u64, f32)) {
    let tokens = &normalized.tokens;
    let mut negated_until: Option<(u32, usize)> = None;
    for (i, token) in tokens.iter().enumerate() {
        let word = token.text.as_bytes();
        let negated = negated_until.is_some_and(|(clause, end)| clause == token.clause && i < end);
        emit(hash(&[if negated { b"!" } else { b"w" }, word]), 1.0);
        if i == 0 {
            emit(hash(&[b"^", word]), 1.0);
        }
        if let Some(previous) = i.checked_sub(1).map(|p| &tokens[p]) {
            if previous.clause == token.clause {
                emit(hash(&[b"b", previous.text.as_bytes(), b" ", word]), 1.0);
            }
        }
        if !token.text.starts_with("emj") {
            let chars: Vec<char> = std::iter::once('<')
                .chain(token.text.chars())
                .chain(std::iter::once('>'))
                .collect();
            if chars.len() >= 5 {
                let mut buf = [0u8; 12];
                for gram in chars.windows(3) {
                    let mut len = 0;
                    for c in gram {
                        len += c.encode_utf8(&mut buf[len..]).len();
                    }
                    emit(hash(&[b"c", &buf[..len]]), CHAR_WEIGHT);
                }
            }
        }
        if NEGATORS.contains(&token.text.as_str()) {
            negated_until = Some((token.clause, i + 1 + NEGATION_SCOPE));
        }
    }
    if normalized.question {
        emit(hash(&[b"?"]), 1.0);
    }
}

/// FNV-1a over the concatenated parts.
fn hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn best(model: &NaiveBayes, text: &str) -> Intent {
        let p = model.probabilities(text);
        let k = (0..4).fold(0, |b, j| if p[j] > p[b] { j } else { b });
        INTENTS[k]
    }

    #[test]
    fn classify_model_learns_from_examples() {
        let model = NaiveBayes::train([
            (Intent::Confirm, "yes I will be there"),
            (Intent::Confirm, "see you then"),
            (Intent::Cancel, "I will not be there"),
            (Intent::Cancel, "please cancel"),
            (Intent::Reschedule, "can we move it to friday"),
            (Intent::Unclear, "where is the office"),
        ]);
        assert_eq!(best(&model, "yes see you"), Intent::Confirm);
        assert_eq!(best(&model, "not there"), Intent::Cancel);
        assert_eq!(best(&model, "cancelled"), Intent::Cancel);
        assert_eq!(best(&model, "move to monday"), Intent::Reschedule);
        let p = model.probabilities("");
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn classify_model_trained_on_the_dataset_skips_keywords() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/replies.tsv");
        let model = NaiveBayes::from_tsv(&std::fs::read_to_string(path).expect("dataset"));
        assert!(!model.log_likelihood.is_empty());
        assert_eq!(
            best(&model, "I need to cancel my appointment"),
            Intent::Cancel
        );
        assert_eq!(intent_of_label("opt_out"), None);
    }
}
