//! `aro test messaging --to …` sends through the configured provider and prints the
//! answer: the sandbox without credentials (and the message is in the log), Twilio with
//! them (the fake Twilio receives it), a refusal explained with a non-zero exit, and a
//! bad number refused before anything is sent.

mod common;
#[path = "fakes/twilio.rs"]
mod fake_twilio;

use common::aro_command;
use fake_twilio::{Failure, FakeTwilio};

const SID: &str = "AC000000000000000000000000000000c1";
const TOKEN: &str = "cli-test-token";

fn run(dir: &std::path::Path, env: &[(&str, &str)], to: &str) -> (bool, String, String) {
    let out = aro_command(dir)
        .args(["test", "messaging", "--to", to])
        .env("ARO_DATA_DIR", dir)
        .env("ARO_LOG_LEVEL", "error")
        .envs(env.iter().copied())
        .output()
        .expect("run aro");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn without_credentials_it_goes_to_the_sandbox() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, stdout, stderr) = run(dir.path(), &[], "+15559876543");
    assert!(ok, "{stderr}");
    assert!(stdout.contains("sent through sandbox"), "{stdout}");
    assert!(
        !stdout.contains("+15559876543"),
        "the number is masked: {stdout}"
    );
}

#[test]
fn with_credentials_it_goes_to_twilio_and_refusals_are_explained() {
    let fake = FakeTwilio::start(SID, TOKEN);
    let base = fake.base_url();
    let env = [
        ("ARO_TWILIO_ACCOUNT_SID", SID),
        ("ARO_TWILIO_AUTH_TOKEN", TOKEN),
        ("ARO_TWILIO_FROM", "+15550001111"),
        ("ARO_TWILIO_API_BASE", base.as_str()),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, stdout, stderr) = run(dir.path(), &env, "+15559876543");
    assert!(ok, "{stderr}");
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 1);
    assert!(
        stdout.contains("sent through twilio") && stdout.contains(&accepted[0].sid),
        "{stdout}"
    );

    fake.fail_next(
        1,
        Failure::TwilioError {
            http_status: 400,
            code: 21610,
        },
    );
    let (ok, _, stderr) = run(dir.path(), &env, "+15559876543");
    assert!(!ok, "a refusal exits non-zero");
    assert!(stderr.contains("twilio refused"), "{stderr}");
    assert!(stderr.contains("Final"), "{stderr}");
}

#[test]
fn a_bad_number_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ok, _, stderr) = run(dir.path(), &[], "555-1234");
    assert!(!ok);
    assert!(stderr.contains("not an E.164 number"), "{stderr}");
}
