//! Simulation → thresholds → obligation records → reports, through the binary.

use crate::support::scratch;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn tutela(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tutela"))
        .args(args)
        .output()
        .expect("run tutela");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() != Some(2),
        "tutela {args:?} failed: {stderr}"
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
    )
}

/// A copy of the shipped profiles with the CN thresholds at 2,000 registered and 300 monthly
/// active users (the real ones are 1,000,000 and 100,000; `load/` runs the full size).
fn small_profiles(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles");
    let out = dir.join("profiles");
    for entry in std::fs::read_dir(&root).unwrap() {
        let src = entry.unwrap().path().join("profile.toml");
        if !src.is_file() {
            continue;
        }
        let name = src.parent().unwrap().file_name().unwrap();
        std::fs::create_dir_all(out.join(name)).unwrap();
        let text = std::fs::read_to_string(&src)
            .unwrap()
            .replace("registered_users = 1_000_000", "registered_users = 2_000")
            .replace(
                "monthly_active_users = 100_000",
                "monthly_active_users = 300",
            );
        std::fs::write(out.join(name).join("profile.toml"), text).unwrap();
    }
    out
}

fn figure(item: &Value, label: &str) -> String {
    item["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["label"] == label)
        .unwrap_or_else(|| panic!("no figure `{label}` in {item}"))["value"]
        .as_str()
        .unwrap()
        .replace(',', "")
}

#[test]
fn simulated_month_crosses_thresholds_and_reports_show_its_numbers() {
    let dir = scratch("reports");
    let profiles = small_profiles(&dir);
    let db = dir.join("sim.db");
    let (p, d) = (profiles.to_str().unwrap(), db.to_str().unwrap());
    let common = ["--db", d, "--profiles", p, "--tz-offset", "480"];

    let (code, out) = tutela(&[
        "simulate",
        "--db",
        d,
        "--profiles",
        p,
        "--registered",
        "2500",
        "--active",
        "400",
        "--month",
        "2026-10",
        "--crisis-rate",
        "0.05",
        // The zone of `common`: every command defaults to UTC, so each is given China's.
        "--tz-offset",
        "480",
        "--json",
    ]);
    assert_eq!(code, 0);
    let sim: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(sim["registered_users"], 2500);
    assert!(sim["crises"].as_u64().unwrap() > 5, "{sim}");

    // Thresholds: both crossed, two records opened, and only once.
    let mut check = vec![
        "obligations",
        "check",
        "--month",
        "2026-10",
        "--json",
        "--jurisdictions",
        "cn",
    ];
    check.extend(common);
    let (code, out) = tutela(&check);
    assert_eq!(code, 1, "crossed thresholds exit 1");
    let v: Value = serde_json::from_str(&out).unwrap();
    let states: Vec<&str> = v["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["crossed", "crossed"]);
    assert_eq!(v["opened"].as_array().unwrap().len(), 2);
    let (_, out) = tutela(&check);
    let again: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        again["opened"].as_array().unwrap().len(),
        0,
        "records are opened once"
    );
    let mut list = vec!["obligations", "list", "--json"];
    list.extend(common);
    let (_, out) = tutela(&list);
    let records: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(records.as_array().unwrap().len(), 2);
    assert!(
        records[0]["description"]
            .as_str()
            .unwrap()
            .contains("Art. 22(3)")
    );

    // The assessment report shows what the simulation produced.
    let mut args = vec![
        "report",
        "assessment",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--format",
        "json",
    ];
    args.extend(common);
    let (_, out) = tutela(&args);
    let a: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(a["usage"]["registered_users"], sim["registered_users"]);
    assert_eq!(
        a["usage"]["monthly_active"][0]["total"],
        sim["active_users"]
    );
    let item = |id: &str| {
        a["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap()
            .clone()
    };
    let extreme = item("extreme-situations");
    assert_eq!(
        figure(&extreme, "Cases opened for a human"),
        sim["escalations_opened"].to_string()
    );
    assert_eq!(
        figure(&extreme, "Human takeovers"),
        sim["takeovers"].to_string()
    );
    assert_eq!(
        figure(&extreme, "Users at risk identified"),
        sim["risk_detections"].to_string()
    );
    // Help lines shown to every person in crisis, in every jurisdiction (issue 14: it was the
    // US counter only); the US counter on its own line.
    assert_eq!(
        figure(
            &extreme,
            "Crisis referrals shown (help lines of the person's jurisdiction, every jurisdiction)"
        ),
        sim["crises"].to_string()
    );
    assert_eq!(
        figure(&extreme, "  of which counted for US crisis-referral duties"),
        sim["crisis_referrals"].to_string()
    );
    assert_eq!(
        figure(&extreme, "Replies replaced by tutela"),
        sim["replaced_replies"].to_string()
    );
    let minutes = sim["usage_seconds"].as_u64().unwrap() / 60;
    assert_eq!(
        figure(&item("usage-duration"), "Minutes of use in the period"),
        minutes.to_string()
    );
    assert_eq!(
        figure(&item("age-structure"), "known minor"),
        sim["known_minors"].to_string()
    );
    assert_eq!(item("safeguards")["source"], "needs_human_input");
    assert_eq!(
        a["triggers"].as_array().unwrap().len(),
        2,
        "the open threshold records are the triggers"
    );

    // The SB 243 report counts California referrals and carries no identifier.
    let mut args = vec![
        "report",
        "sb243",
        "--from",
        "2026-01-01",
        "--format",
        "json",
    ];
    args.extend(common);
    let (_, out) = tutela(&args);
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["referral_notifications"], sim["crisis_referrals_us_ca"]);
    for format in ["json", "html", "md"] {
        let mut args = vec![
            "report",
            "sb243",
            "--from",
            "2026-01-01",
            "--format",
            format,
        ];
        args.extend(common);
        let (_, out) = tutela(&args);
        assert!(
            !out.contains("sim-"),
            "a user id leaked into the {format} SB 243 report"
        );
    }

    // The transparency report counts each intervention once per kind.
    let mut args = vec![
        "report",
        "transparency",
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-31",
        "--format",
        "json",
    ];
    args.extend(common);
    let (_, out) = tutela(&args);
    let t: Value = serde_json::from_str(&out).unwrap();
    let total: u64 = t["totals_by_kind"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, sim["interventions"].as_u64().unwrap());
    assert_eq!(
        t["totals_by_kind"]["replace_reply"],
        sim["replaced_replies"]
    );

    // Every report renders in every format.
    for kind in [
        "usage",
        "transparency",
        "assessment",
        "sb243",
        "referrals-wa",
        "referrals-or",
    ] {
        for format in ["html", "md", "json", "pdf"] {
            let mut args = vec![
                "report",
                kind,
                "--from",
                "2026-10-01",
                "--to",
                "2026-10-31",
                "--format",
                format,
            ];
            args.extend(common);
            let (code, out) = tutela(&args);
            assert_eq!(code, 0);
            assert!(out.len() > 200, "{kind} {format}");
            if format == "pdf" {
                assert!(
                    out.starts_with("%PDF-1.4\n") && out.ends_with("%%EOF\n"),
                    "{kind}"
                );
                assert!(!out.contains("sim-"), "{kind}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The 90 % warning comes first, as its own record, and the crossing later as another; each
/// once.
#[test]
fn warning_at_ninety_percent_then_the_crossing() {
    let dir = scratch("warning");
    let profiles = small_profiles(&dir);
    let db = dir.join("sim.db");
    let (p, d) = (profiles.to_str().unwrap(), db.to_str().unwrap());
    let check = [
        "obligations",
        "check",
        "--month",
        "2026-10",
        "--json",
        "--jurisdictions",
        "cn",
        "--db",
        d,
        "--profiles",
        p,
    ];
    let kinds = |v: &Value| -> Vec<String> {
        v["opened"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                format!(
                    "{}:{}",
                    r["trigger"].as_str().unwrap(),
                    r["kind"].as_str().unwrap()
                )
            })
            .collect()
    };

    // 1,850 registered (92.5 % of 2,000) and 280 active (93 % of 300): warnings.
    tutela(&[
        "simulate",
        "--db",
        d,
        "--profiles",
        p,
        "--registered",
        "1850",
        "--active",
        "280",
        "--month",
        "2026-10",
        "--json",
    ]);
    let (code, out) = tutela(&check);
    assert_eq!(code, 1, "a warning exits 1");
    let v: Value = serde_json::from_str(&out).unwrap();
    let states: Vec<&str> = v["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["warning", "warning"]);
    let mut opened = kinds(&v);
    opened.sort();
    assert_eq!(
        opened,
        [
            "monthly_active_users:threshold_warning",
            "registered_users:threshold_warning"
        ]
    );

    // More users: both thresholds crossed, two more records; the warnings are not repeated.
    tutela(&[
        "simulate",
        "--db",
        d,
        "--profiles",
        p,
        "--registered",
        "2100",
        "--active",
        "310",
        "--month",
        "2026-10",
        "--json",
    ]);
    let (_, out) = tutela(&check);
    let v: Value = serde_json::from_str(&out).unwrap();
    let mut opened = kinds(&v);
    opened.sort();
    assert_eq!(
        opened,
        [
            "monthly_active_users:threshold_crossed",
            "registered_users:threshold_crossed"
        ]
    );
    let (_, out) = tutela(&["obligations", "list", "--json", "--db", d]);
    let all: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 4);
    let _ = std::fs::remove_dir_all(&dir);
}
