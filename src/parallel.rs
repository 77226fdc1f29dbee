//! The split of a run into tasks over rayon: contiguous bands of output rows (see
//! `kernels::row_shape`), each written by one single-threaded kernel call. Every output element
//! is computed the same way whatever the band it falls in, so results are bit-identical for any
//! thread count. Runs on the caller's rayon pool (`ThreadPool::install` to choose one), the
//! calling thread taking its share of the bands (see [`share`]).

use std::hint::spin_loop;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::kernels::{self, row_shape};
use crate::{Layout, Plan};

/// Work (input elements read + output elements × window taps) per task: a run with less than
/// twice this stays on the calling thread, and no task gets less. Per layout, because their
/// kernels differ in speed per step. Measured with `examples/task_size.rs` (3x3/2 max, 16
/// channels, one band on the calling thread against two bands in a 2-thread pool, 2-core EPYC,
/// v3). Sessions 1 and 2: channels-first gained 1.2-1.6x from 7.5k steps and 1.8x from 13k,
/// then (with the small-planes kernel) 0.65-0.99x below 8k, 1.2-1.5x at 13-30k, 1.7x from 53k;
/// channels-last, faster per step, lost below 30k (0.6-1.0x) and gained 1.6x at 53k and 1.9x
/// from 120k, then 1.8x from 53k and anywhere from 0.4x to 1.2x below it. Three runs in session
/// 3: channels-first 0.86-0.94x at 13k, 0.99-1.25x at 30k, 1.40-1.66x at 53k; channels-last
/// 0.63-1.04x at 13k, 0.79-1.69x at 30k, 1.10-1.78x at 53k. So channels-first splits from 32k
/// (16k per task) and channels-last from 48k (24k per task). `tiny_max` (3k steps) never
/// touches the pool.
const MIN_TASK_WORK_CHANNELS_FIRST: usize = 16 * 1024;
/// See [`MIN_TASK_WORK_CHANNELS_FIRST`].
const MIN_TASK_WORK_CHANNELS_LAST: usize = 24 * 1024;

/// Tasks per thread, so that a thread that finishes early can take another band.
const TASKS_PER_THREAD: usize = 4;

/// Runs the plan's kernel over the whole output.
pub(crate) fn run(
    plan: &Plan<f32>,
    input: &[f32],
    output: &mut [f32],
    indices: Option<&mut [i64]>,
) {
    let (rows, row_len) = row_shape(plan);
    let taps: usize = plan.axes.iter().map(|a| a.kernel).product();
    let work = output
        .len()
        .saturating_mul(taps)
        .saturating_add(input.len());
    let threads = if plan.parallel {
        rayon::current_num_threads()
    } else {
        1
    };
    let tasks = match plan.forced_tasks {
        Some(tasks) => tasks.min(rows),
        None if threads <= 1 => 1,
        None => (work / min_task_work(plan.layout))
            .min(threads * TASKS_PER_THREAD)
            .min(rows),
    };
    let (kernel, isa) = (plan.kernel, plan.isa);
    if tasks <= 1 {
        kernels::run_rows(plan, kernel, isa, input, output, indices, 0..rows);
        return;
    }
    // Bands of whole groups where the kernel works in groups (forced bands stay as asked, so
    // tests reach every band edge).
    let multiple = match plan.forced_tasks {
        Some(_) => 1,
        None => kernels::band_rows_multiple(plan),
    };
    let band = rows.div_ceil(tasks).next_multiple_of(multiple);
    if band >= rows {
        kernels::run_rows(plan, kernel, isa, input, output, indices, 0..rows);
        return;
    }
    let chunk = band * row_len;
    let helpers = threads.saturating_sub(1).min(tasks - 1);
    let run_band = |t: usize, out: &mut [f32], idx: Option<&mut [i64]>| {
        let start = t * band;
        let rows = start..start + out.len() / row_len;
        kernels::run_rows(plan, kernel, isa, input, out, idx, rows);
    };
    match indices {
        None => share(output.chunks_mut(chunk).enumerate(), helpers, |(t, out)| {
            run_band(t, out, None)
        }),
        Some(indices) => share(
            output
                .chunks_mut(chunk)
                .zip(indices.chunks_mut(chunk))
                .enumerate(),
            helpers,
            |(t, (out, idx))| run_band(t, out, Some(idx)),
        ),
    }
}

/// How long the calling thread spins for the last bands of others before it sleeps in the
/// scope's wait: a sleep and wake-up costs about 5 µs a call here, a tenth of a 2-thread
/// `alexnet_max` (`cargo run --release --example pool_round_trip`: 48 µs of work, 31-39 µs
/// a call sleeping, 27-28 µs spinning). A band's run can be much longer than this; then the
/// wake-up is small beside it.
const SPIN_FOR_OTHERS: Duration = Duration::from_micros(50);

/// Runs `work` on every item of `items`, on the calling thread and on `helpers` jobs of the
/// current rayon pool. The caller takes items from the front, the helpers from the back, until
/// none is left: the caller works from the start instead of waiting for the pool to wake, takes
/// over the items of a helper that starts late, and each thread keeps to one end of the
/// output, as the same thread did on the call before (its part stays in its core's cache).
/// Each item is written by one thread, so the results do not depend on which.
fn share<I>(items: I, helpers: usize, work: impl Fn(I::Item) + Sync)
where
    I: DoubleEndedIterator + ExactSizeIterator + Send,
    I::Item: Send,
{
    let count = items.len();
    let queue = Mutex::new(items);
    let finished = AtomicUsize::new(0);
    let take = |from_back: bool| loop {
        // The guard is dropped at the end of this block: no lock is held while working.
        let next = {
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            if from_back {
                queue.next_back()
            } else {
                queue.next()
            }
        };
        let Some(item) = next else { break };
        work(item);
        finished.fetch_add(1, Ordering::Release);
    };
    rayon::in_place_scope(|scope| {
        for _ in 0..helpers {
            scope.spawn(|_| take(true));
        }
        take(false);
        // Every item is taken now, each by a thread that is running it (a helper that has not
        // started takes none): spin until they are done, for a while, then sleep in the scope.
        let spinning = Instant::now();
        while finished.load(Ordering::Acquire) < count && spinning.elapsed() < SPIN_FOR_OTHERS {
            spin_loop();
        }
    });
}

/// The least work per task for a layout (see [`MIN_TASK_WORK_CHANNELS_FIRST`]).
fn min_task_work(layout: Layout) -> usize {
    match layout {
        Layout::ChannelsFirst => MIN_TASK_WORK_CHANNELS_FIRST,
        Layout::ChannelsLast => MIN_TASK_WORK_CHANNELS_LAST,
    }
}
