//! How a train run reads: its [`Report`] for people and its exit status (refused by the gate is
//! its own, [`Exit::GateRefused`]). `--json` is the outcome itself.

use std::fmt;

use super::TrainOutcome;
use crate::commands::{Exit, Report};

impl Report for TrainOutcome {
    /// Refused by the gate is its own status: the run worked, the live model did not change.
    fn exit(&self) -> Exit {
        if self.promoted {
            Exit::Success
        } else {
            Exit::GateRefused
        }
    }
}

impl fmt::Display for TrainOutcome {
    /// The human summary of a run.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.metrics;
        writeln!(
            f,
            "trained {} {} on {} rows, evaluated on {}",
            self.model_name, self.version, self.n_train, self.n_test
        )?;
        writeln!(
            f,
            "  accuracy {:.3}  precision {:.3}  recall {:.3}  f1 {:.3}  roc_auc {}  baseline_f1 {:.3}  threshold {:.3}",
            m.accuracy,
            m.precision,
            m.recall,
            m.f1,
            m.roc_auc.map_or("n/a".to_string(), |a| format!("{a:.3}")),
            m.baseline_f1,
            m.threshold
        )?;
        writeln!(
            f,
            "  artifact {} ({} bytes, sha256 {})",
            self.artifact.display(),
            self.size_bytes,
            self.sha256
        )?;
        if self.already_recorded {
            writeln!(
                f,
                "  {} was already recorded: its record is kept, this run is in history.jsonl",
                self.version
            )?;
        }
        if self.promoted {
            write!(
                f,
                "  gate passed (f1 >= {}): promoted to model.wasm",
                self.gate.f1_min
            )
        } else {
            write!(
                f,
                "  gate refused (f1 {:.3} < {}): recorded, live model unchanged",
                self.gate.f1, self.gate.f1_min
            )
        }
    }
}
