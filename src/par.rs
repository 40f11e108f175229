//! Data parallelism for the CPU-bound parts of loading (parsing, validating and expanding
//! thousands of workspace files): scoped threads over contiguous chunks, results in input order.

/// Below this many items, map on the calling thread (spawning costs more than it saves).
const PARALLEL_THRESHOLD: usize = 64;

/// `items.iter().map(f).collect()`, on up to 4 threads; same order, panics re-raised.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() < PARALLEL_THRESHOLD {
        return items.iter().map(f).collect();
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 4);
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> =
            items.chunks(chunk).map(|c| scope.spawn(move || c.iter().map(f).collect::<Vec<R>>())).collect();
        let mut out = Vec::with_capacity(items.len());
        for handle in handles {
            out.extend(handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_input_order_above_and_below_the_threshold() {
        for n in [0, 3, 63, 64, 1000, 1001] {
            let items: Vec<usize> = (0..n).collect();
            assert_eq!(super::map(&items, |i| i * 2), items.iter().map(|i| i * 2).collect::<Vec<_>>(), "n={n}");
        }
    }
}
