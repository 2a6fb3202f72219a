//! Reply classification (SPEC §4): what a customer's free-text SMS reply means.
//!
//! This module owns the two in-process stages, run in this order by the caller:
//! 1. [`keywords`]: the deterministic carrier keywords — opt-out (STOP, CANCEL, …, a bare
//!    CANCEL flagged for escalation), opt-in (START, UNSTOP, YES while opted out) and
//!    help — matched only on the whole message;
//! 2. [`intent`]: the local intent classifier ([`LocalClassifier`]), a normalising
//!    tokenizer plus a weighted lexicon of words and phrases (English, Spanish, some
//!    French and Portuguese, emoji, common typos) whose scores become calibrated
//!    probabilities; below [`CONFIDENCE_FLOOR`] the intent is reported `Unclear`.
//!
//! Supporting modules: `text` (normalisation shared by the rules and the model) and
//! [`model`], a naive Bayes model trained on the dataset that can be blended into the
//! classifier ([`LocalClassifier::with_model`]); it is off by default because
//! cross-validation shows no gain over the rules yet.
//!
//! It performs no I/O; the labelled dataset it is measured on is
//! `tests/data/replies.tsv` at the workspace root (see `actors/tests/classifier.rs`).

pub mod intent;
pub mod keywords;
pub mod model;
mod text;

pub use intent::{LocalClassifier, CONFIDENCE_FLOOR};
pub use keywords::{keyword_action, KeywordAction};
