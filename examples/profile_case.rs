use nnpool::{Layout, Padding, Plan, PoolDesc};
fn main() {
    let layout = if std::env::args().nth(1).as_deref() == Some("nhwc") {
        Layout::ChannelsLast
    } else {
        Layout::ChannelsFirst
    };
    let desc = PoolDesc::max(&[3, 3])
        .strides(&[2, 2])
        .padding(Padding::symmetric(&[1, 1]));
    let plan = Plan::<f32>::new(&desc, layout, &[1, 64, 112, 112])
        .unwrap()
        .with_parallel(false);
    let input: Vec<f32> = (0..plan.input_len()).map(|i| (i % 97) as f32).collect();
    let mut out = vec![0.0; plan.output_len()];
    let t = std::time::Instant::now();
    let iters: u32 = std::env::var("ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    for _ in 0..iters {
        plan.run(&input, &mut out).unwrap();
    }
    println!("{} {:?}/call", plan.kernel_name(), t.elapsed() / iters);
}
