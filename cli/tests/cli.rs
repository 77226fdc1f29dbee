//! Runs the `nnpool` binary: the report's JSON covers every suite case, bad options are errors
//! that name the problem, `info` reports the levels.

use std::process::Command;

fn nnpool(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nnpool"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn quick_bench_writes_json_for_every_case() {
    let dir = std::env::temp_dir().join(format!("nnpool-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("bench.json");
    let svg = dir.join("bench.svg");
    let out = nnpool(&[
        "bench",
        "--quick",
        "--json",
        json.to_str().unwrap(),
        "--svg",
        svg.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let suite: serde_json::Value =
        serde_json::from_str(include_str!("../../benches/bench-suite.json")).unwrap();
    let results = doc["results"].as_array().unwrap();
    for case in suite["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        for layout in ["nchw", "nhwc"] {
            for imp in ["nnpool", "reference", "copy"] {
                let found = results.iter().any(|r| {
                    r["case"] == name
                        && r["layout"] == layout
                        && r["impl"] == imp
                        && r["median_s"].as_f64().is_some_and(|t| t > 0.0)
                        && r["calls"].as_u64().is_some_and(|c| c > 0)
                        && r["bytes"].as_u64().is_some_and(|b| b > 0)
                });
                assert!(found, "no {imp} result for {name}/{layout}");
            }
            assert!(stdout.contains(name), "the table lacks {name}");
        }
    }
    assert!(doc["cpu"].is_string() && doc["isa"].is_string());
    // The chart: an SVG document with a labelled group per case and layout.
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(chart.starts_with("<svg") && chart.trim_end().ends_with("</svg>"));
    for case in suite["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        assert!(
            chart.contains(&format!(">{name} nchw<")),
            "chart lacks {name}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_options_are_errors_that_name_them() {
    for (args, needle) in [
        (vec!["bench", "--case", "no_such_case"], "no_such_case"),
        (vec!["bench", "--layout", "nwhc"], "--layout"),
        (vec!["bench", "--isa", "v9"], "--isa"),
        (vec!["bench", "--threads", "0"], "--threads"),
        (vec!["bench", "--suite", "/no/such/suite.json"], "--suite"),
    ] {
        let out = nnpool(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}

#[test]
fn info_lists_the_levels() {
    let out = nnpool(&["info"]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("levels available: scalar"), "{stdout}");
    assert!(stdout.contains("kernels"), "{stdout}");
}
