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

/// Whether bars are drawn, and the size of the messages they count.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    visible: bool,
    message_bytes: u64,
}

impl Progress {
    /// Bars drawn if `visible`, counting messages of `message_bytes`.
    pub fn new(visible: bool, message_bytes: u64) -> Self {
        Self {
            visible,
            message_bytes,
        }
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
                    .with_key("rate", self.draw_rate())
                    .progress_chars("=> "),
                ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{prefix} {spinner} {human_pos} ({rate}, {elapsed})")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner())
                    .with_key("rate", self.draw_rate()),
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

impl Progress {
    /// The `{rate}` of a bar ([`rate`]).
    fn draw_rate(&self) -> impl Fn(&ProgressState, &mut dyn std::fmt::Write) + Clone + 'static {
        let message_bytes = self.message_bytes;
        move |state, out| {
            let _ = out.write_str(&rate(state.per_sec(), message_bytes));
        }
    }
}

/// A rate of messages of `message_bytes` as a reader wants it, as the
/// report writes it: whole messages per second with thousands separated
/// (one decimal below 100), and megabytes per second with one decimal
/// (`12,345 msgs/s, 45.6 MB/s`).
fn rate(per_sec: f64, message_bytes: u64) -> String {
    let per_sec = if per_sec.is_finite() && per_sec > 0.0 {
        per_sec
    } else {
        0.0
    };
    let messages = if per_sec < 100.0 {
        format!("{per_sec:.1}")
    } else {
        // Saturates at u64::MAX, far above any rate.
        HumanCount(per_sec.round() as u64).to_string()
    };
    let megabytes = per_sec * message_bytes as f64 / 1e6;
    format!("{messages} msgs/s, {megabytes:.1} MB/s")
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
        assert_eq!(rate(12_345.678_9, 1024), "12,346 msgs/s, 12.6 MB/s");
        assert_eq!(rate(1_234_567.0, 100), "1,234,567 msgs/s, 123.5 MB/s");
        assert_eq!(rate(100.0, 0), "100 msgs/s, 0.0 MB/s");
        assert_eq!(rate(45.6789, 1_000_000), "45.7 msgs/s, 45.7 MB/s");
        assert_eq!(rate(0.0, 1024), "0.0 msgs/s, 0.0 MB/s");
        assert_eq!(rate(f64::NAN, 1024), "0.0 msgs/s, 0.0 MB/s");
    }
}
