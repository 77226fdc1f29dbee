//! Every invalid input is a typed error whose message names the argument; nothing panics.

use nnpool::{Layout, Padding, Plan, PoolDesc, PoolError};

fn plan(desc: &PoolDesc, shape: &[usize]) -> Result<Plan<f32>, PoolError> {
    Plan::new(desc, Layout::ChannelsFirst, shape)
}

/// Asserts the error and that its message mentions `needle`.
fn expect(result: Result<Plan<f32>, PoolError>, expected: PoolError, needle: &str) {
    let err = result.expect_err("should be rejected");
    assert_eq!(err, expected);
    let text = err.to_string();
    assert!(
        text.contains(needle),
        "message {text:?} does not mention {needle:?}"
    );
}

#[test]
fn rank_errors() {
    let max = PoolDesc::max(&[2, 2]);
    expect(
        plan(&max, &[1, 1]),
        PoolError::UnsupportedRank { dims: 2 },
        "input_shape",
    );
    expect(
        plan(&max, &[1, 1, 2, 2, 2, 2]),
        PoolError::UnsupportedRank { dims: 6 },
        "input_shape",
    );
    let mismatch = |argument, got| PoolError::RankMismatch {
        argument,
        expected: 2,
        got,
    };
    expect(
        plan(&PoolDesc::max(&[2]), &[1, 1, 4, 4]),
        mismatch("kernel", 1),
        "kernel",
    );
    expect(
        plan(&max.clone().strides(&[1, 1, 1]), &[1, 1, 4, 4]),
        mismatch("strides", 3),
        "strides",
    );
    expect(
        plan(&max.clone().dilations(&[1]), &[1, 1, 4, 4]),
        mismatch("dilations", 1),
        "dilations",
    );
    let pads = max.clone().padding(Padding::explicit(&[0], &[0, 0]));
    expect(
        plan(&pads, &[1, 1, 4, 4]),
        mismatch("pads_begin", 1),
        "pads_begin",
    );
    let pads = max.padding(Padding::explicit(&[0, 0], &[0]));
    expect(
        plan(&pads, &[1, 1, 4, 4]),
        mismatch("pads_end", 1),
        "pads_end",
    );
}

#[test]
fn zero_sizes() {
    let max = PoolDesc::max(&[2, 2]);
    expect(
        plan(&max, &[0, 1, 4, 4]),
        PoolError::ZeroDimension { dim: 0 },
        "input_shape[0]",
    );
    expect(
        plan(&max, &[1, 1, 4, 0]),
        PoolError::ZeroDimension { dim: 3 },
        "input_shape[3]",
    );
    let zero = |argument, axis| PoolError::ZeroWindowParameter { argument, axis };
    expect(
        plan(&PoolDesc::max(&[2, 0]), &[1, 1, 4, 4]),
        zero("kernel", 1),
        "kernel[1] = 0",
    );
    expect(
        plan(&max.clone().strides(&[0, 1]), &[1, 1, 4, 4]),
        zero("strides", 0),
        "strides[0]",
    );
    expect(
        plan(&max.dilations(&[1, 0]), &[1, 1, 4, 4]),
        zero("dilations", 1),
        "dilations[1]",
    );
}

#[test]
fn window_larger_than_padded_input() {
    let desc = PoolDesc::max(&[3, 5]).padding(Padding::symmetric(&[0, 1]));
    expect(
        plan(&desc, &[1, 1, 4, 2]),
        PoolError::WindowLargerThanInput {
            axis: 1,
            effective_kernel: 5,
            padded_input: 4,
        },
        "axis 1",
    );
    // Dilation makes the window span 2*(3-1)+1 = 5 > 4.
    let desc = PoolDesc::max(&[3]).dilations(&[2]).padding(Padding::Valid);
    expect(
        plan(&desc, &[1, 1, 4]),
        PoolError::WindowLargerThanInput {
            axis: 0,
            effective_kernel: 5,
            padded_input: 4,
        },
        "5 elements",
    );
    // Ceil mode too needs the window to start inside the input or the begin padding.
    let desc = PoolDesc::max(&[4]).strides(&[2]).ceil_mode(true);
    assert!(matches!(
        plan(&desc, &[1, 1, 2]),
        Err(PoolError::WindowLargerThanInput { .. })
    ));
}

#[test]
fn windows_of_padding_only() {
    // Pad 2 before a kernel of 2: the first window covers padding only.
    let desc = PoolDesc::average(&[1, 2])
        .strides(&[1, 1])
        .padding(Padding::explicit(&[0, 2], &[0, 0]));
    expect(
        plan(&desc, &[1, 1, 3, 3]),
        PoolError::EmptyWindow { axis: 1 },
        "axis 1",
    );
    // End padding as large as the window: the last window covers padding only.
    let desc = PoolDesc::max(&[2])
        .strides(&[1])
        .padding(Padding::explicit(&[0], &[2]));
    expect(
        plan(&desc, &[1, 1, 3]),
        PoolError::EmptyWindow { axis: 0 },
        "padding only",
    );
    // Dilation jumping over a one-element input: taps at -1 and 2.
    let desc = PoolDesc::max(&[2])
        .dilations(&[3])
        .padding(Padding::SameUpper);
    expect(
        plan(&desc, &[1, 1, 1]),
        PoolError::EmptyWindow { axis: 0 },
        "axis 0",
    );
}

#[test]
fn ceil_mode_with_auto_padding() {
    for (padding, name) in [
        (Padding::Valid, "valid"),
        (Padding::SameUpper, "same"),
        (Padding::SameLower, "same-lower"),
    ] {
        let desc = PoolDesc::max(&[2]).padding(padding).ceil_mode(true);
        expect(
            plan(&desc, &[1, 1, 5]),
            PoolError::CeilModeWithAutoPadding { padding: name },
            name,
        );
    }
}

#[test]
fn settings_the_op_or_window_does_not_take() {
    let global = |argument| PoolError::NotApplicable {
        argument,
        reason: "a global window",
    };
    let shape = [1, 1, 4, 4];
    expect(
        plan(&PoolDesc::global_max().strides(&[1, 1]), &shape),
        global("strides"),
        "strides",
    );
    expect(
        plan(&PoolDesc::global_max().dilations(&[1, 1]), &shape),
        global("dilations"),
        "dilations",
    );
    expect(
        plan(&PoolDesc::global_max().padding(Padding::Valid), &shape),
        global("padding"),
        "padding",
    );
    expect(
        plan(&PoolDesc::global_max().ceil_mode(false), &shape),
        global("ceil_mode"),
        "ceil_mode",
    );
    let on_max = |argument| PoolError::NotApplicable {
        argument,
        reason: "max pooling",
    };
    let max = PoolDesc::max(&[2, 2]);
    expect(
        plan(&max.clone().count_include_pad(true), &shape),
        on_max("count_include_pad"),
        "count_include_pad",
    );
    expect(
        plan(&max.divisor_override(2.0), &shape),
        on_max("divisor_override"),
        "divisor_override",
    );
    let on_lp = PoolError::NotApplicable {
        argument: "count_include_pad",
        reason: "lp pooling",
    };
    expect(
        plan(&PoolDesc::lp(&[2, 2], 2.0).count_include_pad(false), &shape),
        on_lp,
        "lp pooling",
    );
}

#[test]
fn invalid_p_and_divisor() {
    for p in [0.0, 0.5, -2.0, f32::NAN, f32::INFINITY] {
        let result = plan(&PoolDesc::lp(&[2], p), &[1, 1, 4]);
        let err = result.expect_err("bad p");
        assert!(matches!(err, PoolError::InvalidP { .. }), "{err:?}");
        assert!(err.to_string().contains("p = "));
    }
    for d in [0.0, f32::NAN, f32::NEG_INFINITY] {
        let err = plan(&PoolDesc::average(&[2]).divisor_override(d), &[1, 1, 4])
            .expect_err("bad divisor");
        assert!(matches!(err, PoolError::InvalidDivisor { .. }), "{err:?}");
        assert!(err.to_string().contains("divisor_override"));
    }
    // A negative divisor is allowed, as in PyTorch.
    assert!(plan(&PoolDesc::average(&[2]).divisor_override(-3.0), &[1, 1, 4]).is_ok());
}

#[test]
fn overflowing_shapes() {
    let max = PoolDesc::max(&[1, 1]);
    let huge = usize::MAX / 2;
    let err = plan(&max, &[huge, 4, 1, 1]).unwrap_err();
    assert_eq!(
        err,
        PoolError::Overflow {
            what: "input element count"
        }
    );
    assert!(err.to_string().contains("overflows"));
    // Fits usize as a count but not as a byte size of f32.
    let err = plan(&max, &[1 << 62, 1, 1, 1]).unwrap_err();
    assert_eq!(
        err,
        PoolError::Overflow {
            what: "input element count"
        }
    );
    let err = plan(&PoolDesc::max(&[usize::MAX]).dilations(&[2]), &[1, 1, 4]).unwrap_err();
    assert!(matches!(err, PoolError::Overflow { .. }), "{err:?}");
    let err = plan(
        &PoolDesc::max(&[1]).padding(Padding::explicit(&[usize::MAX], &[1])),
        &[1, 1, 4],
    )
    .unwrap_err();
    assert!(matches!(err, PoolError::Overflow { .. }), "{err:?}");
    // Huge but valid descriptors are validated without allocating for their size.
    let big = usize::MAX / 8;
    let ok = plan(
        &PoolDesc::max(&[3])
            .strides(&[usize::MAX])
            .padding(Padding::SameUpper),
        &[1, 1, big],
    );
    assert_eq!(ok.unwrap().output_shape(), &[1, 1, 1]);
    let ok = plan(&PoolDesc::max(&[1]).strides(&[1]), &[1, 1, big]);
    assert_eq!(ok.unwrap().output_shape(), &[1, 1, big]);
}

#[test]
fn buffer_lengths_and_indices() {
    let plan = plan(&PoolDesc::max(&[2, 2]), &[1, 2, 4, 4]).unwrap();
    let input = vec![0.0; 32];
    let mut output = vec![0.0; 8];
    let mut indices = vec![0i64; 8];
    let length = |argument, expected, got| PoolError::BufferLength {
        argument,
        expected,
        got,
    };
    assert_eq!(
        plan.run(&input[..31], &mut output),
        Err(length("input", 32, 31))
    );
    assert_eq!(
        plan.run(&input, &mut output[..7]),
        Err(length("output", 8, 7))
    );
    let mut long = vec![0.0; 9];
    let err = plan.run(&input, &mut long).unwrap_err();
    assert_eq!(err, length("output", 8, 9));
    assert!(err.to_string().contains("output has 9 elements"));
    assert_eq!(
        plan.run_with_indices(&input, &mut output, &mut indices[..5]),
        Err(length("indices", 8, 5))
    );
    assert_eq!(
        plan.run_alloc(&input[..3]).unwrap_err(),
        length("input", 32, 3)
    );
    let avg = Plan::<f32>::new(
        &PoolDesc::average(&[2, 2]),
        Layout::ChannelsFirst,
        &[1, 2, 4, 4],
    )
    .unwrap();
    let err = avg
        .run_with_indices(&input, &mut output, &mut indices)
        .unwrap_err();
    assert_eq!(err, PoolError::IndicesUnsupported { op: "average" });
    assert!(err.to_string().contains("indices"));
    assert!(avg.run_alloc_with_indices(&input).is_err());
    let mut reference_out = vec![0.0; 8];
    assert_eq!(
        nnpool::reference::pool(&avg, &input, &mut reference_out, Some(&mut indices)),
        Err(PoolError::IndicesUnsupported { op: "average" })
    );
}
