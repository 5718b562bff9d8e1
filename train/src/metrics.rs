//! Classification metrics and decision-threshold tuning, defined as scikit-learn defines them
//! (`zero_division=0`, ROC AUC by ranks), so numbers reported here compare directly with the
//! lab's. The lab's gate reads `f1` and `baseline_f1` from an [`Evaluation`].

use serde::{Deserialize, Serialize};

/// Counts of a binary confusion matrix.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Predicted 1, actually 1.
    pub tp: usize,
    /// Predicted 1, actually 0.
    pub fp: usize,
    /// Predicted 0, actually 0.
    pub tn: usize,
    /// Predicted 0, actually 1.
    #[serde(rename = "fn")]
    pub fn_: usize,
}

impl Confusion {
    /// Counts predictions `prob >= threshold` against `target`.
    pub fn at(probs: &[f64], target: &[u8], threshold: f64) -> Self {
        let mut counts = Confusion::default();
        for (&p, &t) in probs.iter().zip(target) {
            match (p >= threshold, t == 1) {
                (true, true) => counts.tp += 1,
                (true, false) => counts.fp += 1,
                (false, false) => counts.tn += 1,
                (false, true) => counts.fn_ += 1,
            }
        }
        counts
    }

    /// F1 = 2·tp / (2·tp + fp + fn), zero when there is no true positive. This equals the
    /// harmonic mean of precision and recall, and being a ratio of integers it is bit-identical
    /// for equal confusion matrices, which makes tie-breaking in threshold tuning exact.
    pub fn f1(&self) -> f64 {
        if self.tp == 0 {
            0.0
        } else {
            (2 * self.tp) as f64 / (2 * self.tp + self.fp + self.fn_) as f64
        }
    }
}

/// A model's evaluation at one threshold: the classification metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// Fraction of rows predicted correctly (0 for no rows).
    pub accuracy: f64,
    /// tp / (tp + fp), 0 when nothing is predicted positive.
    pub precision: f64,
    /// tp / (tp + fn), 0 when nothing is actually positive.
    pub recall: f64,
    /// Harmonic mean of precision and recall, 0 when either is 0.
    pub f1: f64,
    /// Area under the ROC curve; `None` when only one class is present, where it is undefined.
    pub roc_auc: Option<f64>,
    /// F1 of the always-0 predictor the lab gates against; it never predicts a positive, so
    /// this is always 0, and is reported so the gate's comparison is explicit.
    pub baseline_f1: f64,
    /// The threshold the predictions used: `prob >= threshold` means churn.
    pub threshold: f64,
    /// Number of rows evaluated.
    pub n: usize,
    /// The confusion matrix behind the ratios.
    pub confusion: Confusion,
}

fn ratio(numerator: usize, denominator: usize) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// Evaluates probabilities against 0/1 labels at `threshold`.
///
/// # Panics
/// If `probs` and `target` differ in length, which is a caller bug rather than a data problem.
pub fn evaluate(probs: &[f64], target: &[u8], threshold: f64) -> Evaluation {
    assert_eq!(
        probs.len(),
        target.len(),
        "evaluate needs one probability per label"
    );
    let confusion = Confusion::at(probs, target, threshold);
    // The always-0 predictor turns every actual positive into a false negative.
    let baseline = Confusion {
        tp: 0,
        fp: 0,
        tn: confusion.tn + confusion.fp,
        fn_: confusion.tp + confusion.fn_,
    };
    Evaluation {
        accuracy: ratio(confusion.tp + confusion.tn, probs.len()),
        precision: ratio(confusion.tp, confusion.tp + confusion.fp),
        recall: ratio(confusion.tp, confusion.tp + confusion.fn_),
        f1: confusion.f1(),
        roc_auc: roc_auc(probs, target),
        baseline_f1: baseline.f1(),
        threshold,
        n: probs.len(),
        confusion,
    }
}

/// ROC AUC by the Mann–Whitney rank formula: `(R₁ − n₁(n₁+1)/2) / (n₁·n₀)`, where `R₁` sums the
/// positives' ranks and tied scores share their average rank (so a tie counts one half, exactly
/// as integrating the ROC curve does). `None` when either class is absent.
pub fn roc_auc(probs: &[f64], target: &[u8]) -> Option<f64> {
    let n1 = target.iter().filter(|&&t| t == 1).count();
    let n0 = target.len() - n1;
    if n1 == 0 || n0 == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[a].total_cmp(&probs[b]));
    let mut positive_rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && probs[order[end]] == probs[order[start]] {
            end += 1;
        }
        // Ranks start..end (0-based) become 1-based start+1..=end; their average is below.
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let positives = order[start..end]
            .iter()
            .filter(|&&i| target[i] == 1)
            .count();
        positive_rank_sum += average_rank * positives as f64;
        start = end;
    }
    let n1f = n1 as f64;
    Some((positive_rank_sum - n1f * (n1f + 1.0) / 2.0) / (n1f * n0 as f64))
}

/// True when `candidate` beats `incumbent` on the tie-break: nearer to 0.5, and between two
/// equally near the higher, which predicts churn more conservatively.
fn nearer_half(candidate: f64, incumbent: f64) -> bool {
    let (c, i) = ((candidate - 0.5).abs(), (incumbent - 0.5).abs());
    c < i || (c == i && candidate > incumbent)
}

/// The threshold maximising F1 over the candidates: every distinct finite probability, plus 0.5.
/// Among thresholds with equal F1 the one nearest 0.5 wins (see above), so the result is
/// deterministic and moves away from the conventional default only for a real gain.
///
/// Runs in O(n log n): probabilities are sorted once and swept from the highest down, each
/// distinct value adding its rows to the predicted positives.
///
/// # Panics
/// If `probs` and `target` differ in length.
pub fn tune_threshold(probs: &[f64], target: &[u8]) -> f64 {
    assert_eq!(
        probs.len(),
        target.len(),
        "tune_threshold needs one probability per label"
    );
    let mut best_threshold = 0.5;
    let mut best_f1 = Confusion::at(probs, target, 0.5).f1();
    let positives = target.iter().filter(|&&t| t == 1).count();
    let mut order: Vec<usize> = (0..probs.len()).filter(|&i| probs[i].is_finite()).collect();
    order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
    let (mut tp, mut fp) = (0, 0);
    let mut start = 0;
    while start < order.len() {
        let value = probs[order[start]];
        let mut end = start;
        while end < order.len() && probs[order[end]] == value {
            if target[order[end]] == 1 {
                tp += 1;
            } else {
                fp += 1;
            }
            end += 1;
        }
        let f1 = Confusion {
            tp,
            fp,
            tn: 0,
            fn_: positives - tp,
        }
        .f1();
        if f1 > best_f1 || (f1 == best_f1 && nearer_half(value, best_threshold)) {
            best_f1 = f1;
            best_threshold = value;
        }
        start = end;
    }
    best_threshold
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_metrics() {
        // At 0.5: predicted 1 for rows 0, 1, 2, 4 → tp 2 (rows 0, 2), fp 2 (1, 4), fn 1 (row 3),
        // tn 1 (row 5).
        let probs = [0.9, 0.8, 0.7, 0.3, 0.5, 0.1];
        let target = [1, 0, 1, 1, 0, 0];
        let m = evaluate(&probs, &target, 0.5);
        assert_eq!(
            m.confusion,
            Confusion {
                tp: 2,
                fp: 2,
                tn: 1,
                fn_: 1
            }
        );
        assert!((m.accuracy - 3.0 / 6.0).abs() < 1e-15);
        assert!((m.precision - 0.5).abs() < 1e-15);
        assert!((m.recall - 2.0 / 3.0).abs() < 1e-15);
        assert!((m.f1 - 4.0 / 7.0).abs() < 1e-15);
        // Pairs (positive, negative) ranked correctly: 0.9 beats all 3; 0.7 beats 0.5, 0.1;
        // 0.3 beats 0.1 → 6 of 9.
        assert!((m.roc_auc.unwrap() - 6.0 / 9.0).abs() < 1e-15);
        assert_eq!((m.baseline_f1, m.n, m.threshold), (0.0, 6, 0.5));
    }

    #[test]
    fn zero_division_gives_zero_and_single_class_has_no_auc() {
        let m = evaluate(&[0.1, 0.2], &[1, 0], 0.5);
        assert_eq!((m.precision, m.recall, m.f1), (0.0, 0.0, 0.0));
        let m = evaluate(&[0.9, 0.2], &[0, 0], 0.5);
        assert_eq!((m.recall, m.f1, m.roc_auc), (0.0, 0.0, None));
        let m = evaluate(&[], &[], 0.5);
        assert_eq!((m.accuracy, m.n), (0.0, 0));
    }

    #[test]
    fn ties_count_half_in_auc() {
        // One positive and one negative with the same score: a coin flip.
        assert_eq!(roc_auc(&[0.4, 0.4], &[1, 0]), Some(0.5));
        // Positive 0.6 beats negatives 0.2 and ties 0.6: (1 + 0.5) / 2.
        assert_eq!(roc_auc(&[0.6, 0.2, 0.6], &[1, 0, 0]), Some(0.75));
        assert_eq!(roc_auc(&[0.9, 0.1], &[1, 0]), Some(1.0));
    }

    #[test]
    fn tuning_finds_the_best_f1_threshold() {
        // At 0.5 only row 0 is predicted: F1 = 2/(2+0+2) = 0.5. At 0.3 rows 0-2: tp 3, fp 0 →
        // F1 = 1. Lower thresholds add false positives.
        let probs = [0.8, 0.4, 0.3, 0.2, 0.1];
        let target = [1, 1, 1, 0, 0];
        let t = tune_threshold(&probs, &target);
        assert_eq!(t, 0.3);
        assert_eq!(evaluate(&probs, &target, t).f1, 1.0);
    }

    #[test]
    fn tuning_prefers_the_threshold_nearest_half_on_ties() {
        // Every threshold in (0.2, 0.9] gives the same predictions; 0.5 itself is nearest.
        assert_eq!(tune_threshold(&[0.9, 0.2], &[1, 0]), 0.5);
        // 0.7 and 0.5 both separate the classes perfectly; 0.5 is nearer to itself.
        assert_eq!(tune_threshold(&[0.7, 0.3, 0.3], &[1, 0, 0]), 0.5);
        // F1 is 2/3 at both 0.75 and 0.25 but only 1/2 at 0.5 (which also takes in the negative
        // at 0.6): the two are equally near 0.5, and the higher is chosen.
        let probs = [0.75, 0.6, 0.25, 0.25];
        let target = [1, 0, 1, 0];
        assert_eq!(evaluate(&probs, &target, 0.5).f1, 0.5);
        assert_eq!(
            evaluate(&probs, &target, 0.75).f1,
            evaluate(&probs, &target, 0.25).f1
        );
        assert_eq!(tune_threshold(&probs, &target), 0.75);
        // No positives anywhere: nothing beats F1 = 0, so the default stands.
        assert_eq!(tune_threshold(&[0.3, 0.7], &[0, 0]), 0.5);
        assert_eq!(tune_threshold(&[], &[]), 0.5);
    }
}
