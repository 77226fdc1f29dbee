//! Per-thread scratch memory for kernels whose working set is too large for the stack. It grows
//! to the largest size a thread has needed and is then reused, so only the first runs on a
//! thread allocate. It is taken and given back rather than lent to a closure, so that the
//! kernel using it stays inside its SIMD level's `#[target_feature]` context.

use std::cell::Cell;
use std::thread::LocalKey;

thread_local! {
    static SCRATCH: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
    static OUTER: Cell<Vec<f32>> = const { Cell::new(Vec::new()) };
}

/// This thread's scratch, at least `len` elements long (contents unspecified). Give it back with
/// [`give_back`].
pub(crate) fn take(len: usize) -> Vec<f32> {
    take_from(&SCRATCH, len)
}

/// Returns a buffer from [`take`] for the next run on this thread.
pub(crate) fn give_back(buffer: Vec<f32>) {
    SCRATCH.with(|cell| cell.set(buffer));
}

/// As [`take`], from a second buffer: for a kernel that runs another kernel (which takes the
/// first) inside. Give it back with [`give_back_outer`].
pub(crate) fn take_outer(len: usize) -> Vec<f32> {
    take_from(&OUTER, len)
}

/// Returns a buffer from [`take_outer`].
pub(crate) fn give_back_outer(buffer: Vec<f32>) {
    OUTER.with(|cell| cell.set(buffer));
}

/// The buffer of one of the thread-locals above, grown to `len` elements if shorter.
fn take_from(buffer: &'static LocalKey<Cell<Vec<f32>>>, len: usize) -> Vec<f32> {
    let mut buffer = buffer.with(Cell::take);
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    buffer
}
