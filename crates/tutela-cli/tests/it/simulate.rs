//! `tutela simulate` fills a database of its own: it refuses one that holds a deployment's
//! data (#13 item 9), and a database it filled can be filled again.

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

fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tutela-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
