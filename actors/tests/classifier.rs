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
//! the dataset's size and Spanish share, and (property) that any input — arbitrary
//! unicode, very long — classifies without panicking and with a confidence in [0, 1].

use std::collections::BTreeMap;

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
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/replies.tsv");
    let raw = std::fs::read_to_string(path).expect("tests/data/replies.tsv is readable");
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

#[test]
fn dataset_accuracy_is_at_least_95_percent() {
    let classifier = LocalClassifier::new();
    let lines = dataset();
    let mut matrix: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut correct = 0usize;
    for line in &lines {
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
    println!("{report}");
    assert!(accuracy >= 0.95, "accuracy below 95 %\n{report}");
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
