//! The stratified train/test split. Each class is shuffled and cut separately, so train and test
//! keep the data's churn rate (the lab's `train_test_split(stratify=y)`), and the shuffle is
//! ChaCha8 seeded by the caller, so a given seed names one split forever.

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Splits row indices into `(train, test)`, both sorted ascending.
///
/// For each class (0 first, then 1) the class's rows are shuffled and the first
/// `round(n_class · test_fraction)` go to test. A `test_fraction` outside `[0, 1]` is clamped
/// into it, and NaN counts as 0, because a split must always be produced.
///
/// Unlike scikit-learn's `StratifiedShuffleSplit`, which rounds the total test size once and then
/// distributes it, rounding per class can make the test size differ from
/// `round(n · test_fraction)` by one; in exchange each class's share is exact to one row.
pub fn stratified_split(target: &[u8], test_fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let fraction = if test_fraction.is_nan() {
        0.0
    } else {
        test_fraction.clamp(0.0, 1.0)
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut train = Vec::with_capacity(target.len());
    let mut test = Vec::new();
    let mut classes: Vec<u8> = target.to_vec();
    classes.sort_unstable();
    classes.dedup();
    for class in classes {
        let mut rows: Vec<usize> = (0..target.len()).filter(|&i| target[i] == class).collect();
        rows.shuffle(&mut rng);
        let n_test = (rows.len() as f64 * fraction).round() as usize;
        test.extend_from_slice(&rows[..n_test]);
        train.extend_from_slice(&rows[n_test..]);
    }
    train.sort_unstable();
    test.sort_unstable();
    (train, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n_zero: usize, n_one: usize) -> Vec<u8> {
        // Interleave the classes so that a split that ignored labels would show it.
        let mut target = vec![0u8; n_zero + n_one];
        for slot in target.iter_mut().step_by(3).take(n_one) {
            *slot = 1;
        }
        target
    }

    #[test]
    fn each_class_is_split_by_its_own_rounded_share() {
        let target = labels(630, 270);
        let (train, test) = stratified_split(&target, 0.25, 42);
        let ones = |rows: &[usize]| rows.iter().filter(|&&i| target[i] == 1).count();
        // round(630 · 0.25) = round(157.5) = 158 zeros and round(270 · 0.25) = 68 ones.
        assert_eq!(test.len(), 158 + 68);
        assert_eq!(ones(&test), 68);
        assert_eq!(ones(&train), 270 - 68);
        assert!(train.windows(2).all(|w| w[0] < w[1]));
        assert!(test.windows(2).all(|w| w[0] < w[1]));
        let mut all: Vec<usize> = train.iter().chain(&test).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..900).collect::<Vec<_>>());
    }

    #[test]
    fn the_seed_fixes_the_split() {
        let target = labels(100, 50);
        assert_eq!(
            stratified_split(&target, 0.3, 1),
            stratified_split(&target, 0.3, 1)
        );
        assert_ne!(
            stratified_split(&target, 0.3, 1).1,
            stratified_split(&target, 0.3, 2).1
        );
    }

    #[test]
    fn extreme_fractions_are_clamped() {
        let target = labels(10, 5);
        assert_eq!(stratified_split(&target, 0.0, 3).1, Vec::<usize>::new());
        assert_eq!(stratified_split(&target, 2.0, 3).0, Vec::<usize>::new());
        assert_eq!(stratified_split(&target, f64::NAN, 3).0.len(), 15);
        assert_eq!(stratified_split(&[], 0.25, 3), (vec![], vec![]));
    }
}
