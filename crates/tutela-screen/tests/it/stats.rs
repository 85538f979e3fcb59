//! Wilson intervals against published values and the review gate.

use tutela_screen::stats::{Verdict, Z95, corpus_manual_gate, wilson};

fn close(a: (f64, f64), b: (f64, f64)) {
    assert!(
        (a.0 - b.0).abs() < 1e-6 && (a.1 - b.1).abs() < 1e-6,
        "{a:?} != {b:?}"
    );
}

#[test]
fn wilson_known_values() {
    // statsmodels proportion_confint(95, 100, method="wilson") = (0.888250, 0.978456).
    close(wilson(95, 100, Z95), (0.888_249_530_768, 0.978_456_320_846));
    // x = 0: upper bound z²/(n + z²).
    close(wilson(0, 10, Z95), (0.0, 0.277_532_799_863));
    close(wilson(10, 10, Z95), (0.722_467_200_137, 1.0));
    close(
        wilson(3840, 4000, Z95),
        (0.953_472_819_515, 0.965_644_492_658),
    );
    close(
        wilson(285, 300, Z95),
        (0.919_152_966_527, 0.969_468_359_371),
    );
    assert_eq!(wilson(0, 0, Z95), (0.0, 1.0));
}

#[test]
fn review_file_is_scored() {
    let dir = tempdir("review");
    let path = dir.join("review.csv");
    let mut s = String::from("item,verdict,note,key,source,file,line,screen,reasons,text\r\n");
    for i in 0..4000 {
        let v = if i < 150 {
            "fail"
        } else if i % 2 == 0 {
            "pass"
        } else {
            "合格"
        };
        s.push_str(&format!(
            "{i},{v},,k{i},web,f.jsonl,{i},kept,,\"text, with \"\"quotes\"\"\nand a newline\"\r\n"
        ));
    }
    std::fs::write(&path, &s).unwrap();
    let r = tutela_screen::review::score(&path).unwrap();
    assert_eq!(
        (r.rows, r.judged, r.passed, r.failed, r.unjudged),
        (4000, 4000, 3850, 150, 0)
    );
    assert_eq!(r.gate.verdict, Verdict::Pass);
    // One more failure: 3849 / 4000 = 96.225 % still passes; 161 failures do not.
    let s2 = s.replacen(",pass,", ",fail,", 11);
    std::fs::write(&path, &s2).unwrap();
    let r = tutela_screen::review::score(&path).unwrap();
    assert_eq!((r.passed, r.failed), (3839, 161));
    assert_eq!(r.gate.verdict, Verdict::Fail);
    // Unjudged rows do not count: 3999 judged is not enough.
    let s3 = s.replacen(",pass,", ",,", 1);
    std::fs::write(&path, &s3).unwrap();
    let r = tutela_screen::review::score(&path).unwrap();
    assert_eq!((r.judged, r.unjudged), (3999, 1));
    assert_eq!(r.gate.verdict, Verdict::InsufficientSample);
    assert_eq!(corpus_manual_gate().min_items, 4000);
    // A verdict that is neither is an error with its line.
    std::fs::write(
        &path,
        "item,verdict,screen\r\n1,pass,kept\r\n2,maybe,kept\r\n",
    )
    .unwrap();
    let e = tutela_screen::review::score(&path).unwrap_err().to_string();
    assert!(
        e.ends_with(":3: verdict `maybe` is not pass or fail"),
        "{e}"
    );
}

pub fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("tutela-screen-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
