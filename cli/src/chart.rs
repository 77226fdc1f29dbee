//! `--svg`: the report as a horizontal bar chart, one group per case and layout, one bar per
//! implementation and thread count, length = effective GB/s ((input + output bytes) / time).
//! Plain SVG text, so any browser shows it.

use std::fmt::Write;

use serde_json::Value;

const BAR: f64 = 14.0;
const GAP: f64 = 10.0;
const LABEL: f64 = 230.0;
const PLOT: f64 = 560.0;

fn colour(imp: &str) -> &'static str {
    match imp {
        "nnpool" => "#1f77b4",
        "copy" => "#7f7f7f",
        "reference" => "#c7c7c7",
        "candle" => "#ff7f0e",
        "burn" => "#2ca02c",
        "tract" => "#9467bd",
        _ => "#8c564b",
    }
}

/// One bar: its label, the implementation (for the colour) and GB/s.
type Bar<'a> = (String, &'a str, f64);

/// Draws the results of a run (the `--json` records).
pub fn draw(results: &[Value], cpu: &str, isa: &str) -> String {
    // Groups in the order the run produced them.
    let mut groups: Vec<(String, Vec<Bar>)> = Vec::new();
    for r in results {
        let (Some(case), Some(layout), Some(imp)) =
            (r["case"].as_str(), r["layout"].as_str(), r["impl"].as_str())
        else {
            continue;
        };
        let (Some(seconds), Some(bytes)) = (r["median_s"].as_f64(), r["bytes"].as_f64()) else {
            continue;
        };
        // The copy is timed beside each thread count; one bar of it per case.
        if imp == "copy" && r["threads"].as_u64() != Some(1) {
            continue;
        }
        let key = format!("{case} {layout}");
        let label = match imp {
            "copy" | "reference" => imp.to_string(),
            _ => format!("{imp} {}t", r["threads"]),
        };
        let gbps = bytes / seconds / 1e9;
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, bars)) => bars.push((label, imp, gbps)),
            None => groups.push((key, vec![(label, imp, gbps)])),
        }
    }
    let top = groups
        .iter()
        .flat_map(|(_, bars)| bars.iter().map(|b| b.2))
        .fold(1e-9, f64::max);
    let height: f64 = 50.0
        + groups
            .iter()
            .map(|(_, bars)| 18.0 + bars.len() as f64 * BAR + GAP)
            .sum::<f64>();
    let width = LABEL + PLOT + 80.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        svg,
        r#"<text x="10" y="20" font-size="14">nnpool bench: effective GB/s (longer is faster) — {} — level {}</text>"#,
        escape(cpu),
        escape(isa)
    );
    let mut y = 40.0;
    for (key, bars) in &groups {
        let _ = writeln!(
            svg,
            r#"<text x="10" y="{}" font-weight="bold">{}</text>"#,
            y + 12.0,
            escape(key)
        );
        y += 18.0;
        for (label, imp, gbps) in bars {
            let length = (gbps / top * PLOT).max(1.0);
            let _ = writeln!(
                svg,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{LABEL}" y="{y}" width="{length:.1}" height="{}" fill="{}"/><text x="{}" y="{}">{gbps:.2}</text>"#,
                LABEL - 6.0,
                y + BAR - 3.0,
                escape(label),
                BAR - 2.0,
                colour(imp),
                LABEL + length + 4.0,
                y + BAR - 3.0
            );
            y += BAR;
        }
        y += GAP;
    }
    svg.push_str("</svg>\n");
    svg
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
