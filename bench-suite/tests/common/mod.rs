//! What the end-to-end tests share: the `profile` binary as a newcomer runs it (no colours, no
//! log filter of the caller's), and a run that must end with a given exit code.

use std::process::Output;

use assert_cmd::Command;

/// The `profile` binary under test.
pub fn profile() -> Command {
    let mut cmd = Command::cargo_bin("profile").expect("the profile binary");
    cmd.env("NO_COLOR", "1").env_remove("RUST_LOG");
    cmd
}

/// Both streams of a finished command, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Run `cmd`, which must exit with `code`.
pub fn run(cmd: &mut Command, code: i32) -> Output {
    let out = cmd.output().expect("ran");
    assert_eq!(out.status.code(), Some(code), "exit code\n{}", text(&out));
    out
}
