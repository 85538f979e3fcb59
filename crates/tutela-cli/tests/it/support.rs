//! What the tests of the binary share: running `tutela` in a directory, and a scratch directory.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `tutela ARGS` in `dir`: exit code, standard output, standard error.
pub fn tutela(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tutela"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run tutela");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An empty directory of this test process, named by `tag`.
pub fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tutela-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
