//! The reply classifier (SPEC §4) measured on the shipped, hand-labelled dataset.
//!
//! Dataset: `tests/data/replies.tsv` at the workspace root, one reply per line as
//! `expected<TAB>text[<TAB>lang]`, `#` lines are comments. `expected` is one of
//! confirm, reschedule, cancel, unclear, opt_out, opt_in, help; the optional `lang`
//! column marks non-English replies (es = Spanish, fr, pt). opt_in lines are START /
//! UNSTOP only, so every line is classified as for a sender who is not opted out:
//! keyword rules first (`keyword_action(text, false)`), then `LocalClassifier`.
//!
//! Checks: accuracy ≥ 95 % (the confusion matrix and every miss are printed), zero
//! missed opt-outs and zero false opt-outs, the SPEC's named cases, the confidence floor,
//! the dataset's size and Spanish share, a 10-fold cross-validation of the trained
//! naive Bayes model (alone and blended with the rules), and (property) that any input — arbitrary
//! unicode, very long — classifies without panicking and with a confidence in [0, 1].

use std::collections::BTreeMap;
use std::sync::Arc;

use actors::classify::model::{intent_of_label, NaiveBayes};
use actors::classify::{keyword_action, KeywordAction, LocalClassifier, CONFIDENCE_FLOOR};
use actors::ports::providers::{Classifier, Intent};
use proptest::prelude::*;

const LABELS: [&str; 7] = [
    "confirm",
    "reschedule",
    "cancel",
    "unclear",
    "opt_out",
    "opt_in",
    "help",
];

struct Line {
    number: usize,
    expected: String,
    text: String,
    lang: Option<String>,
}

fn dataset() -> Vec<Line> {
    lines_of("replies.tsv")
}

/// The labelled lines of `tests/data/<file>`.
fn lines_of(file: &str) -> Vec<Line> {
    let path = format!("{}/../tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    raw.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.starts_with('#'))
        .map(|(i, line)| {
            let mut cols = line.split('\t');
            let expected = cols.next().unwrap_or_default().trim().to_string();
            let text = cols
                .next()
                .unwrap_or_else(|| panic!("line {}: no text column", i + 1))
                .to_string();
            let lang = cols.next().map(|l| l.trim().to_string());
            assert!(
                LABELS.contains(&expected.as_str()),
                "line {}: unknown label {expected:?}",
                i + 1
            );
            Line {
                number: i + 1,
                expected,
                text,
                lang,
            }
        })
        .collect()
}

/// The label the pipeline gives a reply from a sender who is not opted out.
fn predict(classifier: &LocalClassifier, text: &str) -> &'static str {
    match keyword_action(text, false) {
        Some(KeywordAction::OptOut { .. }) => "opt_out",
        Some(KeywordAction::OptIn) => "opt_in",
        Some(KeywordAction::Help) => "help",
        None => match classifier.classify_text(text).intent {
            Intent::Confirm => "confirm",
            Intent::Reschedule => "reschedule",
            Intent::Cancel => "cancel",
            Intent::Unclear => "unclear",
        },
    }
}

/// Accuracy of the local pipeline on `lines`, with a confusion matrix and the misses.
fn score(lines: &[Line]) -> (f64, String) {
    let classifier = LocalClassifier::new();
    let mut matrix: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut correct = 0usize;
    for line in lines {
        let got = predict(&classifier, &line.text);
        *matrix.entry((line.expected.as_str(), got)).or_default() += 1;
        if got == line.expected {
            correct += 1;
        } else {
            let confidence = classifier.classify_text(&line.text).confidence;
            misses.push(format!(
                "  line {:>3}: expected {:<10} got {:<10} ({confidence:.2})  {:?}",
                line.number, line.expected, got, line.text
            ));
        }
    }
    let accuracy = correct as f64 / lines.len() as f64;

    let mut report = format!(
        "accuracy {correct}/{} = {:.1} %\nconfusion matrix (rows expected, columns predicted):\n{:>12}",
        lines.len(),
        accuracy * 100.0,
        ""
    );
    for got in LABELS {
        report.push_str(&format!("{got:>11}"));
    }
    for expected in LABELS {
        report.push_str(&format!("\n{expected:>12}"));
        for got in LABELS {
            let n = matrix.get(&(expected, got)).copied().unwrap_or(0);
            report.push_str(&format!("{n:>11}"));
        }
    }
    report.push_str(&format!(
        "\nmisses ({}):\n{}",
        misses.len(),
        misses.join("\n")
    ));
    (accuracy, report)
}

#[test]
fn dataset_accuracy_is_at_least_95_percent() {
    let (accuracy, report) = score(&dataset());
    println!("{report}");
    assert!(accuracy >= 0.95, "accuracy below 95 %\n{report}");
}

/// The blind held-out set (`tests/data/replies_holdout.tsv`): written without access to
/// the classifier and never tuned on, so this is the honest figure for SPEC §4's "under
/// 5 % wrong intents on realistic replies".
#[test]
fn held_out_accuracy_is_at_least_95_percent() {
    let lines = lines_of("replies_holdout.tsv");
    assert!(
        lines.len() >= 300,
        "the held-out set has {} lines",
        lines.len()
    );
    let (accuracy, report) = score(&lines);
    println!("held-out set: {report}");
    assert!(accuracy >= 0.95, "held-out accuracy below 95 %\n{report}");
}

#[test]
fn confidence_correlates_with_correctness() {
    // Reported, not asserted beyond a sanity check: accuracy per confidence band.
    let classifier = LocalClassifier::new();
    let mut bands: BTreeMap<u32, (usize, usize)> = BTreeMap::new();
    for line in dataset() {
        if keyword_action(&line.text, false).is_some() {
            continue;
        }
        let c = classifier.classify_text(&line.text);
        let band = ((c.confidence * 10.0).floor() as u32).min(9);
        let entry = bands.entry(band).or_default();
        entry.0 += 1;
        if predict(&classifier, &line.text) == line.expected {
            entry.1 += 1;
        }
    }
    for (band, (n, ok)) in &bands {
        println!(
            "confidence [{:.1}, {:.1}): {ok}/{n} correct",
            *band as f64 / 10.0,
            (*band + 1) as f64 / 10.0
        );
    }
    let high: (usize, usize) = bands
        .range(9..)
        .fold((0, 0), |acc, (_, v)| (acc.0 + v.0, acc.1 + v.1));
    assert!(high.0 > 0 && high.1 as f64 / high.0 as f64 >= 0.95);
}

#[test]
fn every_opt_out_line_is_an_opt_out_and_no_other_line_is() {
    let mut wrong = Vec::new();
    for line in dataset() {
        let is_opt_out = matches!(
            keyword_action(&line.text, false),
            Some(KeywordAction::OptOut { .. })
        );
        if is_opt_out != (line.expected == "opt_out") {
            wrong.push(format!(
                "line {} ({}): {:?}",
                line.number, line.expected, line.text
            ));
        }
    }
    assert!(wrong.is_empty(), "opt-out mistakes:\n{}", wrong.join("\n"));
}

#[test]
fn spec_named_cases() {
    let classifier = LocalClassifier::new();

    let text = "I need to cancel my appointment";
    assert_eq!(keyword_action(text, false), None);
    assert_eq!(classifier.classify_text(text).intent, Intent::Cancel);

    for bare in ["CANCEL", "cancel", "Cancel.", "CANCEL."] {
        assert_eq!(
            keyword_action(bare, false),
            Some(KeywordAction::OptOut { bare_cancel: true }),
            "{bare:?}"
        );
    }
    assert_eq!(
        keyword_action("STOP", false),
        Some(KeywordAction::OptOut { bare_cancel: false })
    );

    assert_eq!(keyword_action("YES", true), Some(KeywordAction::OptIn));
    assert_eq!(keyword_action("YES", false), None);
    assert_eq!(classifier.classify_text("YES").intent, Intent::Confirm);

    for text in [
        "Stop texting me",
        "Stop texting me please",
        "stop texting me!!",
    ] {
        assert_eq!(keyword_action(text, false), None, "{text:?}");
        assert_ne!(classifier.classify_text(text).intent, Intent::Confirm);
    }
}

#[test]
fn low_confidence_is_always_reported_unclear() {
    let classifier = LocalClassifier::new();
    for line in dataset() {
        let c = classifier.classify_text(&line.text);
        assert!(
            (0.0..=1.0).contains(&c.confidence),
            "{:?}: {c:?}",
            line.text
        );
        assert_eq!(c.source, "local");
        if c.confidence < CONFIDENCE_FLOOR {
            assert_eq!(c.intent, Intent::Unclear, "{:?}: {c:?}", line.text);
        }
    }
}

#[test]
fn dataset_has_enough_lines_and_spanish() {
    let lines = dataset();
    let spanish = lines
        .iter()
        .filter(|l| l.lang.as_deref() == Some("es"))
        .count();
    assert!(lines.len() >= 300, "only {} lines", lines.len());
    assert!(spanish >= 40, "only {spanish} Spanish lines");
    for label in LABELS {
        assert!(lines.iter().any(|l| l.expected == label), "no {label} line");
    }
}

#[actix_rt::test]
async fn classifier_port_answers_with_source_local() {
    let classifier = LocalClassifier::default();
    let c = classifier
        .classify("yes see you then".to_string())
        .await
        .expect("the local classifier never fails");
    assert_eq!(c.intent, Intent::Confirm);
    assert_eq!(c.source, "local");
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_text_classifies_without_panicking(text in any::<String>()) {
        let c = LocalClassifier::new().classify_text(&text);
        prop_assert!((0.0..=1.0).contains(&c.confidence));
        prop_assert!(c.intent == Intent::Unclear || c.confidence >= CONFIDENCE_FLOOR);
        let _ = keyword_action(&text, false);
        let _ = keyword_action(&text, true);
    }

    #[test]
    fn long_and_mixed_text_classifies_without_panicking(
        words in proptest::collection::vec(
            prop_oneof![
                Just("yes".to_string()),
                Just("cancel".to_string()),
                Just("can't".to_string()),
                Just("¿mañana?".to_string()),
                Just("👍🏽".to_string()),
                Just("resched".to_string()),
                "\\PC{0,12}",
            ],
            0..2_000,
        ),
    ) {
        let text = words.join(" ");
        let c = LocalClassifier::new().classify_text(&text);
        prop_assert!((0.0..=1.0).contains(&c.confidence));
        prop_assert!(c.intent == Intent::Unclear || c.confidence >= CONFIDENCE_FLOOR);
        let _ = keyword_action(&text, false);
    }
}

/// Generalisation of the trained model, measured honestly: 10-fold cross-validation
/// over the dataset (each fold scored by a model trained on the other nine), for the
/// model alone and blended with the rules. Reported; asserted only as a sanity floor.
#[test]
fn cross_validation_of_the_trained_model() {
    let lines = dataset();
    let k = 10;
    let names = ["confirm", "reschedule", "cancel", "unclear"];
    let mut alone = 0usize;
    let mut blends = [(0.5, 8.0, 0usize), (1.0, 2.0, 0usize)];
    for fold in 0..k {
        let model = Arc::new(NaiveBayes::train(
            lines
                .iter()
                .enumerate()
                .filter(|(i, _)| i % k != fold)
                .filter_map(|(_, l)| intent_of_label(&l.expected).map(|i| (i, l.text.as_str()))),
        ));
        let blended: Vec<LocalClassifier> = blends
            .iter()
            .map(|(w, t, _)| LocalClassifier::with_model(Some(model.clone()), *w, *t))
            .collect();
        for (_, line) in lines.iter().enumerate().filter(|(i, _)| i % k == fold) {
            let got = match keyword_action(&line.text, false) {
                Some(_) => predict(&blended[0], &line.text),
                None => {
                    let p = model.probabilities(&line.text);
                    let best = (0..4).fold(0, |b, j| if p[j] > p[b] { j } else { b });
                    names[best]
                }
            };
            alone += usize::from(got == line.expected);
            for (classifier, blend) in blended.iter().zip(blends.iter_mut()) {
                blend.2 += usize::from(predict(classifier, &line.text) == line.expected);
            }
        }
    }
    let rules = LocalClassifier::new();
    let rules_ok = lines
        .iter()
        .filter(|l| predict(&rules, &l.text) == l.expected)
        .count();
    let pct = |n: usize| n as f64 * 100.0 / lines.len() as f64;
    println!("{k}-fold CV, naive Bayes alone: {:.1} %", pct(alone));
    for (w, t, ok) in blends {
        println!(
            "{k}-fold CV, rules + naive Bayes (weight {w}, temperature {t}): {:.1} %",
            pct(ok)
        );
    }
    println!(
        "rules alone (tuned on this data, not cross-validated): {:.1} %",
        pct(rules_ok)
    );
    assert!(pct(alone) >= 80.0);
}
