//! Runs linfa's parallel code on the calling thread. linfa's k-means assigns points with
//! ndarray's rayon iterators; called from outside a rayon pool, every such call hands its work
//! to rayon's global pool and blocks until it is done, which for one micro-batch of a few
//! points costs far more than the work (measured: a third of `iot-anomaly`'s time in thread
//! hand-offs). Here each thread gets a one-thread pool whose only worker is the thread itself,
//! so the same code runs in place, sequentially, with the same result.

use rayon::{ThreadPool, ThreadPoolBuilder};

thread_local! {
    /// This thread's pool (rayon leaks such a pool's registry: one per thread that learns).
    static HERE: Option<ThreadPool> = ThreadPoolBuilder::new()
        .num_threads(1)
        .use_current_thread()
        .build()
        .ok();
}

/// `work`, with any rayon parallelism inside it run on this thread.
pub(crate) fn inline<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    HERE.with(|pool| match pool {
        Some(pool) => pool.install(work),
        None => work(),
    })
}
