//! Measures where splitting a run over two threads starts to pay, to set
//! `parallel::MIN_TASK_WORK_CHANNELS_FIRST` and `_LAST`: for growing 3x3/2 max problems in both
//! layouts, the median time of one band on the calling thread against two bands in a 2-thread
//! pool.
//! `cargo run --release --example task_size`

use std::time::Instant;

use nnpool::{Layout, Padding, Plan, PoolDesc};

fn median_ns(mut run: impl FnMut()) -> f64 {
    run();
    let mut samples: Vec<f64> = (0..41)
        .map(|_| {
            let reps = 20;
            let t = Instant::now();
            for _ in 0..reps {
                run();
            }
            t.elapsed().as_nanos() as f64 / reps as f64
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let desc = PoolDesc::max(&[3, 3])
        .strides(&[2, 2])
        .padding(Padding::symmetric(&[1, 1]));
    println!("layout  shape             work     1 band (ns)  2 bands (ns)  speed-up");
    for layout in [Layout::ChannelsFirst, Layout::ChannelsLast] {
        for side in [8usize, 12, 16, 24, 32, 48, 64] {
            let shape = [1, 16, side, side];
            let plan = Plan::<f32>::new(&desc, layout, &shape).unwrap();
            // The work measure of `parallel::run`: output elements × taps + input elements.
            let work = plan.output_len() * 9 + plan.input_len();
            let input: Vec<f32> = (0..plan.input_len()).map(|i| (i % 97) as f32).collect();
            let mut out = vec![0.0; plan.output_len()];
            let one = plan.clone().with_forced_tasks(1);
            let two = plan.clone().with_forced_tasks(2);
            let t1 = pool.install(|| median_ns(|| one.run(&input, &mut out).unwrap()));
            let t2 = pool.install(|| median_ns(|| two.run(&input, &mut out).unwrap()));
            println!(
                "{:<7} {:<16} {:>7} {:>13.0} {:>13.0} {:>9.2}",
                if layout == Layout::ChannelsFirst {
                    "nchw"
                } else {
                    "nhwc"
                },
                format!("{shape:?}"),
                work,
                t1,
                t2,
                t1 / t2
            );
        }
    }
}
