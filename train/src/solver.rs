//! The numerical core: L2-regularised logistic regression solved to its exact optimum by
//! Newton's method, plus the stable scalar functions (sigmoid, softplus) the rest of the crate
//! shares. It sees only a sparse design matrix and 0/1 labels; what the columns mean is
//! [`crate::fit`]'s business.
//!
//! The objective is scikit-learn's for `LogisticRegression(C)`:
//! `f(β) = ½·Σ_{j≥1} β_j² + C·Σ_i [log(1 + e^{z_i}) − y_i·z_i]`, with `z = Xβ` and parameter 0 the
//! unpenalised intercept. It is strictly convex (the penalty covers every slope, and the
//! intercept's curvature `C·Σ σ_i(1−σ_i)` is positive), so it has one minimiser, and Newton's
//! method with a backtracking line search reaches it from any start. scikit-learn's lbfgs stops
//! at `tol = 1e-4`; this solver goes to the floating-point floor, so its answer is the reference.

/// Relative gradient-norm target: converged when `‖∇f‖ ≤ GRADIENT_TOLERANCE · max(1, C)`. The
/// data term scales with `C`, so the attainable precision does too.
pub const GRADIENT_TOLERANCE: f64 = 1e-10;

/// Newton converges in well under 20 steps on any sane data; the cap only stops a runaway.
const MAX_ITERATIONS: usize = 100;

/// Below this squared Newton decrement (an estimate of twice the remaining objective gap), times
/// `max(1, C)` because the objective scales with `C`, the quadratic model is trusted and the full
/// step taken without a line search: objective differences that small drown in the rounding
/// error of summing thousands of losses, so comparing them would reject good steps.
const FULL_STEP_DECREMENT: f64 = 1e-6;

/// A squared Newton decrement this small (times `max(1, C)`) means the remaining objective gap is
/// far below what doubles can resolve; if the gradient has also stopped shrinking, iterating
/// further is futile.
const STALL_DECREMENT: f64 = 1e-18;

/// The logistic function `1 / (1 + e^{−z})`, without overflow for any finite `z`.
pub fn sigmoid(z: f64) -> f64 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}

/// `log(1 + e^z)`, accurate for large positive and negative `z`.
pub(crate) fn softplus(z: f64) -> f64 {
    if z > 0.0 {
        z + (-z).exp().ln_1p()
    } else {
        z.exp().ln_1p()
    }
}

/// A design matrix stored by rows, each row holding exactly `width` (index, value) entries with
/// distinct indices. One-hot columns make most of the matrix zero, and this keeps the per-row
/// cost at `width²` for the Hessian no matter how large the vocabularies are.
#[derive(Debug, Clone)]
pub(crate) struct Design {
    /// Number of parameters; index 0 is the intercept.
    pub n_params: usize,
    /// Entries per row.
    pub width: usize,
    /// Parameter index of each entry, row after row.
    pub index: Vec<usize>,
    /// Value of each entry, row after row.
    pub value: Vec<f64>,
}

impl Design {
    fn n_rows(&self) -> usize {
        self.index.len().checked_div(self.width).unwrap_or(0)
    }

    fn row(&self, i: usize) -> impl Iterator<Item = (usize, f64)> + '_ {
        let range = i * self.width..(i + 1) * self.width;
        self.index[range.clone()]
            .iter()
            .copied()
            .zip(self.value[range].iter().copied())
    }

    fn margins(&self, beta: &[f64]) -> Vec<f64> {
        (0..self.n_rows())
            .map(|i| self.row(i).map(|(j, v)| beta[j] * v).sum())
            .collect()
    }
}

/// The optimum and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Solution {
    /// Parameters, intercept first.
    pub beta: Vec<f64>,
    /// Newton steps taken.
    pub iterations: usize,
    /// Euclidean norm of the objective's gradient at `beta`.
    pub gradient_norm: f64,
}

/// The solver gave up; reported with its last gradient norm so the caller can judge.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NoConvergence {
    pub iterations: usize,
    pub gradient_norm: f64,
}

fn objective(design: &Design, y: &[u8], c: f64, beta: &[f64]) -> f64 {
    let data: f64 = design
        .margins(beta)
        .iter()
        .zip(y)
        .map(|(&z, &t)| if t == 1 { softplus(-z) } else { softplus(z) })
        .sum();
    0.5 * beta[1..].iter().map(|b| b * b).sum::<f64>() + c * data
}

/// Gradient and Hessian (dense, row-major) of the objective at `beta`.
fn derivatives(design: &Design, y: &[u8], c: f64, beta: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let p = design.n_params;
    let mut gradient = vec![0.0; p];
    let mut hessian = vec![0.0; p * p];
    for (i, z) in design.margins(beta).into_iter().enumerate() {
        let residual = sigmoid(z) - f64::from(y[i]);
        // σ(z)·σ(−z) rather than σ(1−σ): no cancellation when σ is close to 1.
        let weight = sigmoid(z) * sigmoid(-z);
        for (a, va) in design.row(i) {
            gradient[a] += c * residual * va;
            for (b, vb) in design.row(i) {
                hessian[a * p + b] += c * weight * va * vb;
            }
        }
    }
    for j in 1..p {
        gradient[j] += beta[j];
        hessian[j * p + j] += 1.0;
    }
    (gradient, hessian)
}

/// Solves `A·x = b` for symmetric positive definite `A` by Cholesky factorisation, or returns
/// `None` when a pivot is not positive (the matrix is not numerically positive definite).
fn cholesky_solve(a: &[f64], b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            let entry = a[i * n + j] - dot;
            if i == j {
                if !(entry > 0.0 && entry.is_finite()) {
                    return None;
                }
                l[i * n + i] = entry.sqrt();
            } else {
                l[i * n + j] = entry / l[j * n + j];
            }
        }
    }
    let mut x = b.to_vec();
    for i in 0..n {
        let dot: f64 = (0..i).map(|k| l[i * n + k] * x[k]).sum();
        x[i] = (x[i] - dot) / l[i * n + i];
    }
    for i in (0..n).rev() {
        let dot: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
        x[i] = (x[i] - dot) / l[i * n + i];
    }
    Some(x)
}

/// The Newton direction `−H⁻¹g`. If rounding has made `H` lose definiteness (possible only when
/// nearly every probability has saturated), a growing multiple of the identity is added until
/// the factorisation succeeds, which bends the step towards steepest descent.
fn newton_direction(hessian: &[f64], gradient: &[f64]) -> Vec<f64> {
    let p = gradient.len();
    let negative: Vec<f64> = gradient.iter().map(|g| -g).collect();
    if let Some(step) = cholesky_solve(hessian, &negative) {
        return step;
    }
    let largest = (0..p).map(|j| hessian[j * p + j].abs()).fold(1.0, f64::max);
    let mut shift = largest * 1e-12;
    loop {
        let mut shifted = hessian.to_vec();
        for j in 0..p {
            shifted[j * p + j] += shift;
        }
        if let Some(step) = cholesky_solve(&shifted, &negative) {
            return step;
        }
        if shift > largest * 1e6 {
            return negative;
        }
        shift *= 100.0;
    }
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Minimises the objective from `start`. `y` has one 0/1 label per design row and `c > 0`.
pub(crate) fn minimise(
    design: &Design,
    y: &[u8],
    c: f64,
    start: Vec<f64>,
) -> Result<Solution, NoConvergence> {
    let scale = c.max(1.0);
    let tolerance = GRADIENT_TOLERANCE * scale;
    let mut beta = start;
    let mut previous_norm = f64::INFINITY;
    for iteration in 0..MAX_ITERATIONS {
        let (gradient, hessian) = derivatives(design, y, c, &beta);
        let gradient_norm = norm(&gradient);
        let solution = |beta| Solution {
            beta,
            iterations: iteration,
            gradient_norm,
        };
        if gradient_norm <= tolerance {
            return Ok(solution(beta));
        }
        let step = newton_direction(&hessian, &gradient);
        let decrement: f64 = -gradient.iter().zip(&step).map(|(g, s)| g * s).sum::<f64>();
        // Once full Newton steps stop shrinking the gradient, rounding error is all that is
        // left: the point is as optimal as doubles can express.
        if decrement < STALL_DECREMENT * scale && gradient_norm >= previous_norm {
            return Ok(solution(beta));
        }
        previous_norm = gradient_norm;
        let trial =
            |t: f64| -> Vec<f64> { beta.iter().zip(&step).map(|(b, s)| b + t * s).collect() };
        if decrement < FULL_STEP_DECREMENT * scale {
            beta = trial(1.0);
            continue;
        }
        let current = objective(design, y, c, &beta);
        let mut t = 1.0;
        let mut accepted = None;
        for _ in 0..60 {
            let candidate = trial(t);
            // Armijo condition: demand a tenth of a percent of the predicted decrease.
            if objective(design, y, c, &candidate) <= current - 1e-3 * t * decrement {
                accepted = Some(candidate);
                break;
            }
            t *= 0.5;
        }
        match accepted {
            Some(candidate) => beta = candidate,
            None => {
                return Err(NoConvergence {
                    iterations: iteration,
                    gradient_norm,
                });
            }
        }
    }
    let (gradient, _) = derivatives(design, y, c, &beta);
    Err(NoConvergence {
        iterations: MAX_ITERATIONS,
        gradient_norm: norm(&gradient),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dense design (intercept column prepended) turned into the sparse form.
    fn design(rows: &[Vec<f64>]) -> Design {
        let width = rows[0].len() + 1;
        let mut index = Vec::new();
        let mut value = Vec::new();
        for row in rows {
            index.push(0);
            value.push(1.0);
            for (j, &x) in row.iter().enumerate() {
                index.push(j + 1);
                value.push(x);
            }
        }
        Design {
            n_params: width,
            width,
            index,
            value,
        }
    }

    #[test]
    fn gradient_vanishes_at_the_solution() {
        // Overlapping classes, so the optimum is finite even for large C.
        let rows: Vec<Vec<f64>> = (0..40)
            .map(|i| {
                let x = f64::from(i);
                vec![(x * 0.37).sin() * 2.0, (x * 0.11).cos() - 0.3]
            })
            .collect();
        let y: Vec<u8> = (0..40)
            .map(|i| u8::from(i % 3 == 0 || i % 7 == 1))
            .collect();
        for c in [0.01, 1.0, 1e4] {
            let d = design(&rows);
            let solution = minimise(&d, &y, c, vec![0.0; 3]).unwrap();
            // Recompute the gradient from the definition, not with `derivatives`.
            let b = &solution.beta;
            let mut g = [0.0, b[1], b[2]];
            for (row, &t) in rows.iter().zip(&y) {
                let z = b[0] + b[1] * row[0] + b[2] * row[1];
                let r = 1.0 / (1.0 + (-z).exp()) - f64::from(t);
                g[0] += c * r;
                g[1] += c * r * row[0];
                g[2] += c * r * row[1];
            }
            let size = g.iter().map(|v| v.abs()).fold(0.0, f64::max);
            assert!(size < 1e-8 * c.max(1.0), "C = {c}: gradient {g:?}");
            assert!(solution.iterations < 20);
        }
    }

    #[test]
    fn symmetric_groups_match_the_scalar_stationarity_equation() {
        // Two equal groups coded +1 / −1 with churn rates r and 1 − r: by symmetry the
        // intercept is 0 and the slope w solves w + 2·C·n·(σ(w) − r) = 0.
        let n = 10;
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for i in 0..n {
            rows.push(vec![1.0]);
            y.push(u8::from(i < 7)); // r = 0.7
            rows.push(vec![-1.0]);
            y.push(u8::from(i >= 7));
        }
        let c = 0.3;
        let (mut lo, mut hi) = (0.0, 10.0);
        for _ in 0..200 {
            let mid: f64 = 0.5 * (lo + hi);
            if mid + 2.0 * c * n as f64 * (sigmoid(mid) - 0.7) > 0.0 {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let solution = minimise(&design(&rows), &y, c, vec![0.0; 2]).unwrap();
        assert!(solution.beta[0].abs() < 1e-12);
        assert!(
            (solution.beta[1] - lo).abs() < 1e-10,
            "{solution:?} vs {lo}"
        );
    }

    #[test]
    fn huge_c_recovers_the_unregularised_group_rates() {
        // With one indicator the unpenalised MLE fits each group's rate exactly.
        let mut rows = Vec::new();
        let mut y = Vec::new();
        for i in 0..30 {
            rows.push(vec![1.0]);
            y.push(u8::from(i % 5 == 0)); // 0.2
            rows.push(vec![0.0]);
            y.push(u8::from(i % 3 != 0)); // 2/3
        }
        let c = 1e9;
        let solution = minimise(&design(&rows), &y, c, vec![0.0; 2]).unwrap();
        let b = &solution.beta;
        assert!((sigmoid(b[0] + b[1]) - 0.2).abs() < 1e-7);
        assert!((sigmoid(b[0]) - 2.0 / 3.0).abs() < 1e-7);
    }

    #[test]
    fn scalar_helpers_are_stable() {
        assert_eq!(softplus(-800.0), 0.0);
        assert_eq!(softplus(800.0), 800.0);
        assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-15);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
        let x = cholesky_solve(&[4.0, 2.0, 2.0, 3.0], &[2.0, 1.0]).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-15 && x[1].abs() < 1e-15);
        assert!(cholesky_solve(&[1.0, 2.0, 2.0, 1.0], &[1.0, 1.0]).is_none());
    }
}
