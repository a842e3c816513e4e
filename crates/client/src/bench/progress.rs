//! The progress bar on stderr: drawn only when stderr is a terminal and the
//! output is not JSON. Tasks count into an atomic; a ticker draws it ten
//! times a second, so counting costs the tasks one atomic add.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether bars are drawn.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    visible: bool,
}

impl Progress {
    /// Bars drawn if `visible`.
    pub fn new(visible: bool) -> Self {
        Self { visible }
    }

    /// Starts a bar labelled `label` showing `count` out of `total` (or a
    /// count and a rate when the total is unknown). Must be called on a
    /// tokio runtime.
    pub fn start(&self, label: &str, total: Option<u64>, count: Arc<AtomicU64>) -> Phase {
        if !self.visible {
            return Phase {
                bar: ProgressBar::hidden(),
                ticker: None,
            };
        }
        let bar = match total {
            Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
                .with_style(
                    ProgressStyle::with_template(
                        "{prefix} [{bar:30}] {human_pos}/{human_len} ({per_sec}, {eta} left)",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template(
                    "{prefix} {spinner} {human_pos} ({per_sec}, {elapsed})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            ),
        };
        bar.set_prefix(label.to_owned());
        let drawn = bar.clone();
        let ticker = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(100));
            loop {
                ticks.tick().await;
                drawn.set_position(count.load(Ordering::Relaxed));
            }
        });
        Phase {
            bar,
            ticker: Some(ticker),
        }
    }
}

/// A bar being drawn; cleared by [`Phase::finish`] or when dropped.
pub struct Phase {
    bar: ProgressBar,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl Phase {
    /// Stops drawing and clears the bar.
    pub fn finish(self) {}
}

impl Drop for Phase {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        self.bar.finish_and_clear();
    }
}
