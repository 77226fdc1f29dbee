//! Quick start: the same pooling layers as PyTorch, Keras and ONNX describe them, on a small
//! tensor, each checked against the naive reference.
//!
//! Run with `cargo run --release --example quickstart`.

use nnpool::{Layout, Padding, Plan, PoolDesc, PoolError};

fn show(title: &str, desc: &PoolDesc, layout: Layout, shape: &[usize]) -> Result<(), PoolError> {
    let plan = Plan::<f32>::new(desc, layout, shape)?;
    // A deterministic input with ties and negative values.
    let input: Vec<f32> = (0..plan.input_len())
        .map(|i| ((i * 37) % 23) as f32 - 11.0)
        .collect();
    let output = plan.run_alloc(&input)?;

    let mut reference = vec![0.0; plan.output_len()];
    nnpool::reference::pool(&plan, &input, &mut reference, None)?;
    let agrees = output
        .iter()
        .zip(&reference)
        .all(|(a, b)| a.to_bits() == b.to_bits());

    println!("{title}");
    println!(
        "  {:?} {:?} -> {:?}, pads {:?}/{:?}, matches reference: {agrees}",
        layout,
        plan.input_shape(),
        plan.output_shape(),
        plan.pads_begin(),
        plan.pads_end()
    );
    let shown = output.len().min(8);
    println!("  first outputs: {:?}", &output[..shown]);
    if !agrees {
        std::process::exit(1);
    }
    Ok(())
}

fn main() -> Result<(), PoolError> {
    // PyTorch: nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    let torch_max = PoolDesc::max(&[3, 3])
        .strides(&[2, 2])
        .padding(Padding::symmetric(&[1, 1]));
    show(
        "PyTorch MaxPool2d(3, stride=2, padding=1)",
        &torch_max,
        Layout::ChannelsFirst,
        &[1, 4, 9, 9],
    )?;

    // PyTorch: nn.AvgPool2d(2, stride=2, ceil_mode=True) (count_include_pad defaults to True there)
    let torch_avg = PoolDesc::average(&[2, 2])
        .ceil_mode(true)
        .count_include_pad(true);
    show(
        "PyTorch AvgPool2d(2, ceil_mode=True)",
        &torch_avg,
        Layout::ChannelsFirst,
        &[1, 2, 5, 5],
    )?;

    // Keras: layers.MaxPooling2D(pool_size=3, strides=2, padding="same") on NHWC data
    let keras = PoolDesc::max(&[3, 3])
        .strides(&[2, 2])
        .padding(Padding::SameUpper);
    show(
        "Keras MaxPooling2D(3, 2, padding='same')",
        &keras,
        Layout::ChannelsLast,
        &[1, 3, 8, 8],
    )?;

    // ONNX: AveragePool(kernel_shape=[3], strides=[1], auto_pad=SAME_LOWER), 1-D
    let onnx = PoolDesc::average(&[3])
        .strides(&[1])
        .padding(Padding::SameLower);
    show(
        "ONNX AveragePool 1-D, SAME_LOWER",
        &onnx,
        Layout::ChannelsFirst,
        &[1, 2, 10],
    )?;

    // ONNX: LpPool(p=2, kernel_shape=[2, 2, 2]), 3-D
    show(
        "ONNX LpPool p=2, 3-D",
        &PoolDesc::lp(&[2, 2, 2], 2.0),
        Layout::ChannelsFirst,
        &[1, 1, 4, 4, 4],
    )?;

    // Global average pooling (ResNet head), channels-last
    show(
        "GlobalAveragePool",
        &PoolDesc::global_average(),
        Layout::ChannelsLast,
        &[2, 8, 7, 7],
    )?;

    // Argmax indices, PyTorch's convention: the position inside each (n, c) plane.
    let plan = Plan::<f32>::new(
        &PoolDesc::max(&[2, 2]),
        Layout::ChannelsFirst,
        &[1, 1, 4, 4],
    )?;
    let input: Vec<f32> = (0..16).map(|i| ((i * 5) % 16) as f32).collect();
    let (values, indices) = plan.run_alloc_with_indices(&input)?;
    println!(
        "max_pool2d(2) with indices on 0..16 permuted\n  values {:?}\n  indices {indices:?}",
        &values[..]
    );

    // Bad input is an error that says what is wrong, never a panic.
    let err = Plan::<f32>::new(
        &PoolDesc::max(&[5, 5]),
        Layout::ChannelsFirst,
        &[1, 1, 4, 4],
    )
    .unwrap_err();
    println!("error example: {err}");
    Ok(())
}
