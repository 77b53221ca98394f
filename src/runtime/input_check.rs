//! The check that stops a job whose input is evidently not what the pipeline reads: when the
//! first committed lines (at least [`FIRST_LINES`], or all of a smaller input) are all dead
//! letters, and, with `--max-dead-letter-ratio`, whenever the share of dead letters so far
//! passes the limit. The dead letters are committed first, so the error can point at them.

use crate::{Error, Result};

/// How many lines the first check looks at before it judges the input (it judges at epoch
/// ends, so it sees the first epochs that hold at least this many lines).
pub(crate) const FIRST_LINES: u64 = 1_000;

/// Counts committed records and dead letters and judges them.
#[derive(Debug, Default)]
pub(crate) struct InputCheck {
    max_ratio: Option<f64>,
    records: u64,
    dead: u64,
    first_error: Option<String>,
    first_lines_ok: bool,
}

impl InputCheck {
    /// A check that also stops the job when more than `max_ratio` of its lines are dead letters.
    pub(crate) fn new(max_ratio: Option<f64>) -> Self {
        InputCheck {
            max_ratio,
            ..InputCheck::default()
        }
    }

    /// Judges the input after an epoch committed `records` records and `dead` dead letters
    /// (the first with `first_error`); `last` when the input ended with it. `location` says
    /// where the dead letters went.
    pub(crate) fn committed(
        &mut self,
        (records, dead): (u64, u64),
        first_error: Option<&str>,
        last: bool,
        location: impl FnOnce() -> String,
    ) -> Result<()> {
        self.records += records;
        self.dead += dead;
        if self.first_error.is_none() {
            self.first_error = first_error.map(str::to_owned);
        }
        let lines = self.records + self.dead;
        if !self.first_lines_ok && (lines >= FIRST_LINES || last) && lines > 0 {
            if self.records == 0 {
                return Err(Error::UnreadableInput {
                    dead: self.dead,
                    first_error: self.first_error.clone().unwrap_or_default(),
                    location: location(),
                });
            }
            self.first_lines_ok = true;
        }
        match self.max_ratio {
            Some(max) if self.first_lines_ok && self.dead as f64 > max * lines as f64 => {
                Err(Error::TooManyDeadLetters {
                    dead: self.dead,
                    lines,
                    max_ratio: max,
                    location: location(),
                })
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> String {
        "out/dead-letter/".into()
    }

    #[test]
    fn all_dead_first_lines_stop_the_job_naming_the_first_error() {
        let mut check = InputCheck::new(None);
        assert!(check
            .committed((0, 600), Some("expected `{`"), false, at)
            .is_ok());
        let err = check
            .committed((0, 600), Some("other"), false, at)
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("expected `{`") && text.contains("out/dead-letter/"),
            "{text}"
        );
        assert!(text.contains("1200"), "{text}");
    }

    #[test]
    fn a_small_input_is_judged_at_its_end_and_good_lines_pass() {
        let mut small = InputCheck::new(None);
        assert!(small.committed((0, 3), Some("bad"), true, at).is_err());
        let mut good = InputCheck::new(None);
        assert!(good.committed((1, 999), Some("bad"), false, at).is_ok());
        assert!(
            good.committed((0, 50_000), Some("bad"), true, at).is_ok(),
            "no ratio set"
        );
        assert!(
            InputCheck::new(None)
                .committed((0, 0), None, true, at)
                .is_ok(),
            "empty input"
        );
    }

    #[test]
    fn a_ratio_stops_the_job_once_passed() {
        let mut check = InputCheck::new(Some(0.1));
        assert!(check.committed((950, 50), None, false, at).is_ok());
        let err = check.committed((900, 200), None, false, at).unwrap_err();
        assert!(err.to_string().contains("0.1"), "{err}");
    }
}
