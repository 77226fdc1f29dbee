//! Records the exact versions of the peer libraries (from the workspace's Cargo.lock) for the
//! report's header.

fn main() {
    println!("cargo:rerun-if-changed=../Cargo.lock");
    let lock = std::fs::read_to_string("../Cargo.lock").unwrap_or_default();
    let versions: Vec<String> = ["candle-core", "burn-tensor", "tract-core"]
        .iter()
        .map(|name| {
            let version = lock
                .split("[[package]]")
                .find(|block| block.contains(&format!("name = \"{name}\"\n")))
                .and_then(|block| block.lines().find(|l| l.starts_with("version = ")))
                .map(|l| {
                    l.trim_start_matches("version = ")
                        .trim_matches('"')
                        .to_string()
                })
                .unwrap_or_else(|| "?".to_string());
            format!("{name} {version}")
        })
        .collect();
    println!(
        "cargo:rustc-env=NNPOOL_PEER_VERSIONS={}",
        versions.join(", ")
    );
}
