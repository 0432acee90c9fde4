//! Greedy LPT (longest processing time first) over a fixed number of bins.
//!
//! Two places need this arithmetic ahead of time: the CI shard partition
//! (bins are shards, `shard.rs`) and the planned per-worker load that
//! `--inventory-status` shows (bins are workers). Dispatch itself uses the
//! pull form of the same rule (`run_queue/`): there the least-loaded bin
//! is simply whichever worker asks first.
//!
//! Greedy LPT's makespan is at most `total/bins + longest item`, and no bin
//! ends lighter than the fullest minus the longest item: the balance the
//! shard property tests check.

/// Assigns items, taken in `order`, each to the bin with the least load so
/// far (the lowest bin on ties). Returns every item's bin and the bin loads.
pub fn assign(order: &[usize], weights: &[f64], bins: usize) -> (Vec<usize>, Vec<f64>) {
    let mut bin_of = vec![0; weights.len()];
    let mut loads = vec![0.0; bins.max(1)];
    for &item in order {
        let bin = least_loaded(&loads);
        bin_of[item] = bin;
        loads[bin] += weights[item];
    }
    (bin_of, loads)
}

fn least_loaded(loads: &[f64]) -> usize {
    let mut best = 0;
    for (bin, load) in loads.iter().enumerate() {
        if *load < loads[best] {
            best = bin;
        }
    }
    best
}

/// Item indices, heaviest first; equal weights ordered by `tiebreak`.
pub fn heaviest_first<K: Ord>(weights: &[f64], tiebreak: impl Fn(usize) -> K) -> Vec<usize> {
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]).then_with(|| tiebreak(a).cmp(&tiebreak(b))));
    order
}

/// The bound no schedule on `bins` can beat: max(total/bins, longest).
pub fn lower_bound(weights: &[f64], bins: usize) -> f64 {
    let total: f64 = weights.iter().sum();
    let longest = weights.iter().copied().fold(0.0, f64::max);
    (total / bins.max(1) as f64).max(longest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_example() {
        // LPT on 2 bins: 7 | 6, then 5 -> bin 1 (6), 4 -> bin 0 (7) ...
        let w = [5.0, 7.0, 4.0, 6.0];
        let order = heaviest_first(&w, |i| i);
        assert_eq!(order, vec![1, 3, 0, 2]);
        let (bin_of, loads) = assign(&order, &w, 2);
        assert_eq!(bin_of, vec![1, 0, 0, 1]);
        assert_eq!(loads, vec![11.0, 11.0]);
    }

    #[test]
    fn ties_go_to_the_lowest_bin_and_the_tiebreak_order() {
        let w = [1.0; 5];
        let order = heaviest_first(&w, std::cmp::Reverse);
        assert_eq!(order, vec![4, 3, 2, 1, 0]);
        let (bin_of, _) = assign(&order, &w, 2);
        assert_eq!(bin_of, vec![0, 1, 0, 1, 0]);
    }

    #[test]
    fn lower_bound_is_the_larger_of_average_and_longest() {
        assert_eq!(lower_bound(&[1.0, 1.0, 1.0, 1.0], 2), 2.0);
        assert_eq!(lower_bound(&[5.0, 1.0], 4), 5.0);
    }
}
