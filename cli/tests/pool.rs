//! Runs `nnpool pool` on .npy files: its results match the library's for every op in both
//! layouts and every rank, and each bad input is an error that names the problem and leaves no
//! output file behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nnpool::{Layout, Padding, Plan, PoolDesc, PoolOp};
use npyz::WriterBuilder;

fn nnpool(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nnpool"))
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A fresh directory per test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnpool-pool-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn write_npy<T: npyz::AutoSerialize>(file: &Path, shape: &[u64], values: &[T], order: npyz::Order) {
    let mut bytes = Vec::new();
    let mut writer = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .order(order)
        .writer(&mut bytes)
        .begin_nd()
        .unwrap();
    writer.extend(values.iter()).unwrap();
    writer.finish().unwrap();
    std::fs::write(file, bytes).unwrap();
}

fn read_npy<T: npyz::Deserialize>(file: &Path) -> (Vec<u64>, Vec<T>) {
    let npy = npyz::NpyFile::new(std::fs::File::open(file).unwrap()).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec().unwrap())
}

/// Values with ties, negatives and a NaN, from a fixed-seed generator.
fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|i| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if i == 7 {
                f32::NAN
            } else {
                ((state >> 40) % 17) as f32 * 0.5 - 4.0
            }
        })
        .collect()
}

/// `[N, C, spatial...]` as stored in a file of the given layout.
fn file_shape(plan_shape: &[usize], layout: Layout) -> Vec<u64> {
    let mut shape: Vec<u64> = plan_shape.iter().map(|&d| d as u64).collect();
    if layout == Layout::ChannelsLast {
        let c = shape.remove(1);
        shape.push(c);
    }
    shape
}

struct Case {
    args: Vec<&'static str>,
    desc: PoolDesc,
    plan_shape: Vec<usize>,
}

fn cases() -> Vec<Case> {
    let case = |args: &[&'static str], desc: PoolDesc, plan_shape: &[usize]| Case {
        args: args.to_vec(),
        desc,
        plan_shape: plan_shape.to_vec(),
    };
    vec![
        case(
            &[
                "--op", "max", "--kernel", "3,3", "--stride", "2,2", "--pads", "1,0,1,1",
            ],
            PoolDesc::max(&[3, 3])
                .strides(&[2, 2])
                .padding(Padding::explicit(&[1, 0], &[1, 1])),
            &[2, 5, 9, 8],
        ),
        case(
            &[
                "--op",
                "max",
                "--kernel",
                "2,3",
                "--dilation",
                "2,1",
                "--ceil-mode",
            ],
            PoolDesc::max(&[2, 3]).dilations(&[2, 1]).ceil_mode(true),
            &[1, 3, 7, 10],
        ),
        case(
            &[
                "--op",
                "avg",
                "--kernel",
                "3,3",
                "--stride",
                "1,1",
                "--padding",
                "same",
            ],
            PoolDesc::average(&[3, 3])
                .strides(&[1, 1])
                .padding(Padding::SameUpper),
            &[2, 4, 6, 7],
        ),
        case(
            &[
                "--op",
                "avg",
                "--kernel",
                "2,2",
                "--pads",
                "1,1,1,1",
                "--count-include-pad",
            ],
            PoolDesc::average(&[2, 2])
                .padding(Padding::symmetric(&[1, 1]))
                .count_include_pad(true),
            &[1, 3, 5, 5],
        ),
        case(
            &["--op", "avg", "--kernel", "2,2", "--divisor", "3"],
            PoolDesc::average(&[2, 2]).divisor_override(3.0),
            &[1, 2, 4, 6],
        ),
        case(
            &[
                "--op",
                "lp",
                "--kernel",
                "2,2",
                "--p",
                "3",
                "--padding",
                "same-lower",
                "--stride",
                "1,2",
            ],
            PoolDesc::lp(&[2, 2], 3.0)
                .strides(&[1, 2])
                .padding(Padding::SameLower),
            &[1, 3, 5, 7],
        ),
        case(
            &["--op", "lp", "--kernel", "2,2"],
            PoolDesc::lp(&[2, 2], 2.0),
            &[1, 3, 4, 4],
        ),
        case(
            &["--op", "global-max"],
            PoolDesc::global_max(),
            &[2, 3, 5, 4],
        ),
        case(
            &["--op", "global-avg"],
            PoolDesc::global_average(),
            &[2, 3, 5, 4],
        ),
        case(
            &["--op", "global-lp", "--p", "1"],
            PoolDesc::global_lp(1.0),
            &[2, 3, 5, 4],
        ),
        case(
            &[
                "--op",
                "max",
                "--kernel",
                "3",
                "--stride",
                "2",
                "--padding",
                "valid",
            ],
            PoolDesc::max(&[3]).strides(&[2]).padding(Padding::Valid),
            &[2, 3, 11],
        ),
        case(
            &["--op", "avg", "--kernel", "2,2,2"],
            PoolDesc::average(&[2, 2, 2]),
            &[1, 3, 4, 5, 4],
        ),
    ]
}

#[test]
fn pool_matches_the_library_for_every_op_layout_and_rank() {
    let dir = scratch("match");
    let (input_file, output_file, indices_file) =
        (dir.join("in.npy"), dir.join("out.npy"), dir.join("idx.npy"));
    for (n, case) in cases().into_iter().enumerate() {
        for layout in [Layout::ChannelsFirst, Layout::ChannelsLast] {
            let plan = Plan::<f32>::new(&case.desc, layout, &case.plan_shape).unwrap();
            let input = values(plan.input_len(), n as u64);
            let shape = file_shape(&case.plan_shape, layout);
            write_npy(&input_file, &shape, &input, npyz::Order::C);
            let layout_name = match layout {
                Layout::ChannelsFirst => "channels-first",
                _ => "channels-last",
            };
            let with_indices = plan.op() == PoolOp::Max;
            let mut args = vec![
                "pool",
                path(&input_file),
                path(&output_file),
                "--layout",
                layout_name,
            ];
            args.extend(&case.args);
            if with_indices {
                args.extend(["--indices", path(&indices_file)]);
            }
            let out = nnpool(&args);
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let mut expected = vec![0.0f32; plan.output_len()];
            let mut expected_indices = vec![0i64; plan.output_len()];
            if with_indices {
                plan.run_with_indices(&input, &mut expected, &mut expected_indices)
                    .unwrap();
            } else {
                plan.run(&input, &mut expected).unwrap();
            }
            let (got_shape, got) = read_npy::<f32>(&output_file);
            assert_eq!(
                got_shape,
                file_shape(plan.output_shape(), layout),
                "{args:?}"
            );
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&expected), "{args:?}");
            if with_indices {
                let (idx_shape, idx) = read_npy::<i64>(&indices_file);
                assert_eq!(idx_shape, got_shape, "{args:?}");
                assert_eq!(idx, expected_indices, "{args:?}");
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_inputs_are_errors_that_name_the_problem_and_write_nothing() {
    let dir = scratch("errors");
    let good = dir.join("good.npy");
    write_npy(&good, &[1, 2, 4, 4], &values(32, 1), npyz::Order::C);
    let f64_file = dir.join("f64.npy");
    write_npy(&f64_file, &[1, 2, 4, 4], &[1.0f64; 32], npyz::Order::C);
    let int_file = dir.join("int.npy");
    write_npy(&int_file, &[1, 2, 4, 4], &[1i32; 32], npyz::Order::C);
    let fortran = dir.join("fortran.npy");
    write_npy(
        &fortran,
        &[1, 2, 4, 4],
        &values(32, 2),
        npyz::Order::Fortran,
    );
    let rank2 = dir.join("rank2.npy");
    write_npy(&rank2, &[4, 4], &values(16, 3), npyz::Order::C);
    let truncated = dir.join("truncated.npy");
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
    let not_npy = dir.join("text.npy");
    std::fs::write(&not_npy, "hello").unwrap();
    let missing = dir.join("missing.npy");

    let out_file = dir.join("out.npy");
    let idx_file = dir.join("idx.npy");
    let (g, o, i) = (path(&good), path(&out_file), path(&idx_file));
    let max2 = ["--op", "max", "--kernel", "2,2"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            [&["pool", path(&f64_file), o][..], &max2].concat(),
            "dtype '<f8'",
        ),
        (
            [&["pool", path(&int_file), o][..], &max2].concat(),
            "dtype '<i4'",
        ),
        (
            [&["pool", path(&fortran), o][..], &max2].concat(),
            "Fortran order",
        ),
        (
            [&["pool", path(&rank2), o][..], &max2].concat(),
            "rank 3 to 5",
        ),
        (
            [&["pool", path(&truncated), o][..], &max2].concat(),
            "truncated.npy",
        ),
        (
            [&["pool", path(&not_npy), o][..], &max2].concat(),
            "not a valid .npy",
        ),
        (
            [&["pool", path(&missing), o][..], &max2].concat(),
            "cannot open INPUT",
        ),
        (vec!["pool", g, o, "--op", "max"], "--kernel"),
        (
            vec!["pool", g, o, "--op", "avg", "--kernel", "2,2", "--p", "3"],
            "--p",
        ),
        (
            vec![
                "pool",
                g,
                o,
                "--op",
                "avg",
                "--kernel",
                "2,2",
                "--indices",
                i,
            ],
            "--indices",
        ),
        (
            vec![
                "pool",
                g,
                o,
                "--op",
                "max",
                "--kernel",
                "2,2",
                "--divisor",
                "2",
            ],
            "--divisor",
        ),
        (
            vec![
                "pool",
                g,
                o,
                "--op",
                "max",
                "--kernel",
                "2,2",
                "--count-include-pad",
            ],
            "--count-include-pad",
        ),
        (
            vec!["pool", g, o, "--op", "global-avg", "--kernel", "2,2"],
            "--kernel",
        ),
        (
            vec!["pool", g, o, "--op", "global-max", "--stride", "2,2"],
            "--stride",
        ),
        (
            vec!["pool", g, o, "--op", "max", "--kernel", "2,2,2"],
            "kernel",
        ),
        (
            vec![
                "pool", g, o, "--op", "max", "--kernel", "2,2", "--pads", "1,1",
            ],
            "--pads",
        ),
        (
            vec!["pool", g, o, "--op", "max", "--kernel", "5,5"],
            "kernel",
        ),
        (
            vec!["pool", g, o, "--op", "max", "--kernel", "2,0"],
            "kernel",
        ),
        (
            vec![
                "pool", g, o, "--op", "max", "--kernel", "2,2", "--stride", "0,1",
            ],
            "stride",
        ),
        (
            vec![
                "pool",
                g,
                o,
                "--op",
                "avg",
                "--kernel",
                "2,2",
                "--divisor",
                "0",
            ],
            "divisor",
        ),
        (
            vec!["pool", g, o, "--op", "lp", "--kernel", "2,2", "--p", "-1"],
            "p",
        ),
        (
            vec![
                "pool", g, o, "--op", "max", "--kernel", "2,2", "--layout", "nwhc",
            ],
            "--layout",
        ),
        (
            vec![
                "pool", g, o, "--op", "max", "--kernel", "2,2", "--layout", "ncdhw",
            ],
            "rank-5",
        ),
        (
            vec![
                "pool",
                g,
                o,
                "--op",
                "max",
                "--kernel",
                "2,2",
                "--indices",
                o,
            ],
            "--indices",
        ),
        (
            vec!["pool", g, o, "--op", "median", "--kernel", "2,2"],
            "median",
        ),
        (
            vec!["pool", g, o, "--op", "max", "--kernel", "2,x"],
            "--kernel",
        ),
        (
            vec![
                "pool",
                g,
                "/no/such/dir/out.npy",
                "--op",
                "max",
                "--kernel",
                "2,2",
            ],
            "/no/such/dir/out.npy",
        ),
    ];
    for (args, needle) in cases {
        let out = nnpool(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        // 1: our error, 2: a usage error from the argument parser; never a panic's 101.
        assert!(
            matches!(out.status.code(), Some(1 | 2)),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(
            !out_file.exists() && !idx_file.exists(),
            "{args:?} wrote a file"
        );
    }
    // Nothing but the inputs is left in the directory: no temporary files either.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| !name.ends_with(".npy") || name.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_failed_run_leaves_an_existing_output_as_it_was() {
    let dir = scratch("keep");
    let input = dir.join("in.npy");
    write_npy(&input, &[1, 2, 4, 4], &values(32, 4), npyz::Order::C);
    let output = dir.join("out.npy");
    std::fs::write(&output, "previous contents").unwrap();
    let out = nnpool(&[
        "pool",
        path(&input),
        path(&output),
        "--op",
        "max",
        "--kernel",
        "9,9",
    ]);
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(&output).unwrap(),
        "previous contents"
    );
    std::fs::remove_dir_all(&dir).ok();
}
