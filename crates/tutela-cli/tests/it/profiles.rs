//! The profile commands of the README work from any directory (#17): aliases wherever a
//! profile id is taken, and `profiles check profiles` outside the repository checks the
//! built-in copies, while a directory that exists is read from disk.

use std::path::Path;

use crate::support::{scratch, tutela};

#[test]
fn aliases_work_wherever_a_profile_id_is_taken() {
    let dir = scratch("profiles-alias");
    // Every alias `profiles list` prints is accepted by `explain` and `show`.
    let (code, list, stderr) = tutela(&["profiles", "list"], &dir);
    assert_eq!(code, 0, "{stderr}");
    let aliases: Vec<(String, Vec<String>)> = list
        .lines()
        .skip_while(|l| !l.starts_with("Aliases:"))
        .skip(1)
        .filter_map(|l| l.split_once(" = "))
        .map(|(a, ids)| {
            (
                a.trim().to_owned(),
                ids.split(", ").map(|s| s.trim().to_owned()).collect(),
            )
        })
        .collect();
    for a in ["cn", "us-ca", "us-ny", "eu", "us-ut"] {
        assert!(aliases.iter().any(|(x, _)| x == a), "README alias `{a}`");
    }
    for (alias, ids) in &aliases {
        let (code, out, stderr) = tutela(&["profiles", "explain", alias], &dir);
        assert_eq!(code, 0, "explain {alias}: {stderr}");
        assert!(out.contains("Law:"), "{out}");
        let (code, out, stderr) = tutela(&["profiles", "show", alias], &dir);
        assert_eq!(code, 0, "show {alias}: {stderr}");
        for id in ids {
            assert!(
                out.contains(&format!("id = \"{id}\"")),
                "show {alias}: {id}"
            );
        }
    }
    let (code, out, _) = tutela(&["profiles", "explain", "cn"], &dir);
    assert_eq!(code, 0);
    assert!(out.contains("Anthropomorphic"), "{out}");
    let (code, _, stderr) = tutela(&["profiles", "explain", "xx"], &dir);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no profile or jurisdiction `xx`"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn profiles_check_works_from_any_directory() {
    let dir = scratch("profiles-check");
    // No `profiles` here: the README's command checks the built-in copies.
    for args in [
        &["profiles", "check", "profiles"][..],
        &["profiles", "check"],
    ] {
        let (code, out, stderr) = tutela(args, &dir);
        assert_eq!(code, 0, "{stderr}");
        assert!(
            out.starts_with("ok: 19 profiles built into the binary"),
            "{out}"
        );
    }
    // A name that is neither here nor built in is an error, not a silent pass.
    let (code, _, stderr) = tutela(&["profiles", "check", "profile"], &dir);
    assert_eq!(code, 2);
    assert!(stderr.contains("no `profile` here"), "{stderr}");
    // A `profiles` directory that exists is read from disk, relative to where we are.
    let own = dir.join("profiles/tutela-baseline");
    std::fs::create_dir_all(&own).unwrap();
    let baseline =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles/tutela-baseline/profile.toml");
    std::fs::copy(&baseline, own.join("profile.toml")).unwrap();
    let (code, out, stderr) = tutela(&["profiles", "check", "profiles"], &dir);
    assert_eq!(code, 0, "{stderr}");
    assert!(out.starts_with("ok: 1 profiles under `profiles`"), "{out}");
    // ... and its errors are found there.
    let text = std::fs::read_to_string(&baseline).unwrap();
    std::fs::write(
        own.join("profile.toml"),
        text.replacen("id = \"tutela-baseline\"", "id = \"other\"", 1),
    )
    .unwrap();
    let (code, out, _) = tutela(&["profiles", "check", "profiles"], &dir);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("must equal its directory name"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}
