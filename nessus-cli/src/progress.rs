//! Progress bars on stderr for long work.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Files smaller than this convert in well under a second: a bar would only flicker.
const MIN_BYTES_FOR_BAR: u64 = 16 * 1024 * 1024;

/// A byte-count bar for reading `total` bytes, hidden when stderr is not a terminal (so
/// scripts and logs never see control sequences) or when the input is small.
pub(crate) fn bytes_bar(total: u64, message: &str) -> ProgressBar {
    if total < MIN_BYTES_FOR_BAR || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message.to_owned());
    bar
}

/// A bar counting `total` items (scanners checked, …), hidden when stderr is not a
/// terminal.
pub(crate) fn count_bar(total: u64, message: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} {elapsed}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message.to_owned());
    bar
}

/// Runs `work` while a helper thread moves `bar` to the value of `counter` ten times a
/// second: for work that reads on several threads and so has no single position.
pub(crate) fn follow<T>(bar: &ProgressBar, counter: &AtomicU64, work: impl FnOnce() -> T) -> T {
    if bar.is_hidden() {
        return work();
    }
    // The flag is raised on drop, so a panicking `work` still stops the helper and the
    // scope can end.
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                // Two readers overlap by a buffer at the split, so the count can pass
                // the file size by a little; the bar never shows more than all of it.
                let total = bar.length().unwrap_or(u64::MAX);
                bar.set_position(counter.load(Ordering::Relaxed).min(total));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let _stop = StopOnDrop(&done);
        work()
    })
}

/// Raises its flag when dropped, also while unwinding.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
