//! Latency of local reply classification (SPEC §4: p99 ≤ 1 ms).
//!
//! Classifies every line of `tests/data/replies.tsv` (keyword rules, then the local
//! intent classifier, as the caller does) for `ROUNDS` rounds, timing each call with
//! `Instant`, and prints the count and the p50 / p99 / max in microseconds.
//! Run: `cargo bench -p actors --bench classify` (set `CLASSIFY_BENCH_ROUNDS` to change
//! the number of rounds).

use std::hint::black_box;
use std::time::{Duration, Instant};

use actors::classify::{keyword_action, LocalClassifier};

const ROUNDS: usize = 200;

fn main() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/replies.tsv");
    let raw = match std::fs::read_to_string(path) {
        Ok(raw) => raw,
        Err(e) => {
            eprintln!("cannot read {path}: {e}");
            std::process::exit(1);
        }
    };
    let texts: Vec<&str> = raw
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split('\t').nth(1))
        .collect();
    let rounds = std::env::var("CLASSIFY_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);

    let classifier = LocalClassifier::new();
    // Warm-up round, not measured.
    for text in &texts {
        black_box(classifier.classify_text(black_box(text)));
    }

    let mut samples: Vec<Duration> = Vec::with_capacity(texts.len() * rounds);
    for _ in 0..rounds {
        for text in &texts {
            let start = Instant::now();
            let keyword = keyword_action(black_box(text), false);
            if keyword.is_none() {
                black_box(classifier.classify_text(black_box(text)));
            }
            samples.push(start.elapsed());
        }
    }
    samples.sort_unstable();
    let pct = |p: f64| {
        let index = ((samples.len() as f64 * p).ceil() as usize).saturating_sub(1);
        samples
            .get(index.min(samples.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    let max = samples.last().map_or(0.0, |d| d.as_secs_f64() * 1e6);
    println!(
        "classify: {} calls ({} replies x {rounds} rounds): p50 {:.1} us, p99 {:.1} us, max {:.1} us",
        samples.len(),
        texts.len(),
        pct(0.50),
        pct(0.99),
        max
    );

    // The longest SMS a carrier concatenates (~1,600 characters), rambling and mixed.
    let long: String =
        "Hi, sorry, I can't make it on Tuesday at 3pm, maybe we could do later? yes ".repeat(22);
    let mut long_samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            black_box(classifier.classify_text(black_box(&long)));
            start.elapsed()
        })
        .collect();
    long_samples.sort_unstable();
    let long_p99 = long_samples
        .get((long_samples.len() * 99 / 100).min(long_samples.len().saturating_sub(1)))
        .map_or(0.0, |d| d.as_secs_f64() * 1e6);
    println!(
        "classify: {}-char reply x {rounds}: p99 {long_p99:.1} us",
        long.chars().count()
    );
}
