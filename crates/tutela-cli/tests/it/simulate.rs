//! `tutela simulate` fills a database of its own: it refuses one that holds a deployment's
//! data (#13 item 9), and a database it filled can be filled again.

use crate::support::scratch;
use std::process::Command;

fn simulate(db: &std::path::Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tutela"))
        .args(["simulate", "--registered", "40", "--active", "20"])
        .args([
            "--month",
            "2026-10",
            "--crisis-rate",
            "0.5",
            "--json",
            "--db",
        ])
        .arg(db)
        .output()
        .expect("run tutela");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether the database holds the user.
fn has_user(rt: &tokio::runtime::Runtime, db: &std::path::Path, id: &str) -> bool {
    rt.block_on(async {
        let store = tutela_store::Store::open(db).await.unwrap();
        let found = store.users().get_user(id).await.unwrap().is_some();
        store.close().await.unwrap();
        found
    })
}

#[test]
fn simulate_refuses_a_database_with_a_deployment_s_data() {
    let dir = scratch("simulate-refuses");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A deployment's database: one real user.
    let prod = dir.join("prod.db");
    rt.block_on(async {
        let store = tutela_store::Store::open(&prod).await.unwrap();
        let at = tutela_types::Timestamp::parse("2026-10-02T10:00:00Z").unwrap();
        store.users().touch_user("alice", at).await.unwrap();
        store.close().await.unwrap();
    });
    let (code, stderr) = simulate(&prod);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("did not write") && stderr.contains("1 users with other ids"),
        "{stderr}"
    );
    assert!(
        !has_user(&rt, &prod, "sim-0000000"),
        "nothing simulated was written"
    );
    // A new database is filled, and a database a simulation filled can be filled again.
    let sim = dir.join("sim.db");
    let (code, stderr) = simulate(&sim);
    assert_eq!(code, 0, "{stderr}");
    let (code, stderr) = simulate(&sim);
    assert_eq!(code, 0, "{stderr}");
    assert!(has_user(&rt, &sim, "sim-0000039"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `report`, `obligations` and `simulate` share one time-zone default (UTC), and `simulate`
/// names the zone it used in its `next:` line, whose commands use it too (#17).
#[test]
fn one_time_zone_default_and_simulate_names_it() {
    for sub in [
        &["report", "usage"][..],
        &["obligations", "check"],
        &["simulate"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_tutela"))
            .args(sub)
            .arg("--help")
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        let tz: String = help
            .split("--tz-offset")
            .nth(1)
            .and_then(|rest| rest.split("\n  -").next())
            .unwrap_or_default()
            .to_owned();
        assert!(tz.contains("[default: 0]"), "{sub:?}: {tz}");
    }
    let dir = scratch("simulate-zone");
    for (tz, zone) in [
        (None, "UTC"),
        (Some("480"), "UTC+08:00"),
        (Some("-300"), "UTC-05:00"),
    ] {
        let db = dir.join(format!("sim{}.db", tz.unwrap_or("0")));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tutela"));
        cmd.args(["simulate", "--registered", "40", "--active", "20"])
            .args(["--month", "2026-10", "--db"])
            .arg(&db);
        if let Some(tz) = tz {
            cmd.args(["--tz-offset", tz]);
        }
        let out = cmd.output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(0), "{stdout}");
        let next = stdout
            .lines()
            .find_map(|l| l.strip_prefix("next "))
            .unwrap_or_else(|| panic!("no next line: {stdout}"));
        let (head, commands) = next.split_once("): ").unwrap();
        assert_eq!(head, format!("(report time zone {zone}"));
        for command in commands.split(" && ") {
            let argv: Vec<&str> = command.split(' ').collect();
            assert_eq!(argv[0], "tutela");
            match tz {
                Some(tz) => assert!(command.contains(&format!("--tz-offset {tz}")), "{command}"),
                None => assert!(!command.contains("--tz-offset"), "{command}"),
            }
            let run = Command::new(env!("CARGO_BIN_EXE_tutela"))
                .args(&argv[1..])
                .output()
                .unwrap();
            let code = run.status.code();
            assert!(
                code == Some(0) || code == Some(1),
                "`{command}`: {}",
                String::from_utf8_lossy(&run.stderr)
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
