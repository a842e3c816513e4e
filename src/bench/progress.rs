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

use indicatif::{HumanCount, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

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
                        "{prefix} [{bar:30}] {human_pos}/{human_len} ({rate}, {eta} left)",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .with_key("rate", draw_rate)
                    .progress_chars("=> "),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{prefix} {spinner} {human_pos} ({rate}, {elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner())
                    .with_key("rate", draw_rate),
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

/// The `{rate}` of a bar: messages per second, rounded ([`rate`]).
fn draw_rate(state: &ProgressState, out: &mut dyn std::fmt::Write) {
    let _ = out.write_str(&rate(state.per_sec()));
}

/// A rate in messages per second as a reader wants it: whole messages
/// with thousands separated (`12,345 msg/s`), one decimal below 100
/// (`45.6 msg/s`).
fn rate(per_sec: f64) -> String {
    if !per_sec.is_finite() || per_sec <= 0.0 {
        "0 msg/s".to_owned()
    } else if per_sec < 100.0 {
        format!("{per_sec:.1} msg/s")
    } else {
        // Saturates at u64::MAX, far above any rate.
        format!("{} msg/s", HumanCount(per_sec.round() as u64))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_rounded_for_reading() {
        assert_eq!(rate(12_345.678_9), "12,346 msg/s");
        assert_eq!(rate(1_234_567.0), "1,234,567 msg/s");
        assert_eq!(rate(100.0), "100 msg/s");
        assert_eq!(rate(45.6789), "45.7 msg/s");
        assert_eq!(rate(0.0), "0 msg/s");
        assert_eq!(rate(f64::NAN), "0 msg/s");
    }
}
