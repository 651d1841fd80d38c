//! Stable topological sort with cycle reporting, for the service start order.
//!
//! Nodes are `0..n` (config order). Each node lists the nodes it must come
//! after. Among the nodes whose dependencies are all placed, the lowest
//! index goes next, so the result keeps config order wherever the
//! dependencies leave a choice.
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Sort `after` (node → nodes it comes after). On a cycle, returns it as a
/// path that starts and ends at the same node, following `after` edges and
/// starting from its lowest node: `[a, b, a]` means a is after b is after a.
pub fn stable_toposort(after: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = after.len();
    let mut waiting: Vec<usize> = vec![0; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (node, deps) in after.iter().enumerate() {
        let mut seen = Vec::new();
        for &d in deps {
            if !seen.contains(&d) {
                seen.push(d);
                waiting[node] += 1;
                dependents[d].push(node);
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> =
        (0..n).filter(|&i| waiting[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &d in &dependents[i] {
            waiting[d] -= 1;
            if waiting[d] == 0 {
                ready.push(Reverse(d));
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    Err(find_cycle(after, &waiting))
}

/// Walk from the lowest still-waiting node along still-waiting dependencies
/// (one always exists) until a node repeats.
fn find_cycle(after: &[Vec<usize>], waiting: &[usize]) -> Vec<usize> {
    let stuck = |i: usize| waiting[i] > 0;
    let mut path: Vec<usize> = Vec::new();
    let mut cur = (0..after.len()).find(|&i| stuck(i)).unwrap_or(0);
    loop {
        if let Some(start) = path.iter().position(|&p| p == cur) {
            let mut cycle = path[start..].to_vec();
            // Start from the lowest node for a stable message.
            let min = cycle
                .iter()
                .enumerate()
                .min_by_key(|(_, v)| **v)
                .map_or(0, |(k, _)| k);
            cycle.rotate_left(min);
            cycle.push(cycle[0]);
            return cycle;
        }
        path.push(cur);
        cur = after[cur]
            .iter()
            .copied()
            .filter(|&d| stuck(d))
            .min()
            .unwrap_or(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_config_order_where_free() {
        assert_eq!(
            stable_toposort(&[vec![], vec![], vec![]]).unwrap(),
            [0, 1, 2]
        );
        // 0 after 2: 1 is free and stays before 2.
        assert_eq!(
            stable_toposort(&[vec![2], vec![], vec![]]).unwrap(),
            [1, 2, 0]
        );
        // Diamond: 3 after 1, 2; 1 and 2 after 0; listed backwards.
        let after = [vec![], vec![0], vec![0], vec![2, 1]];
        assert_eq!(stable_toposort(&after).unwrap(), [0, 1, 2, 3]);
        let after = [vec![3], vec![3], vec![0, 1], vec![]];
        assert_eq!(stable_toposort(&after).unwrap(), [3, 0, 1, 2]);
        // Duplicate edges are harmless.
        assert_eq!(stable_toposort(&[vec![1, 1], vec![]]).unwrap(), [1, 0]);
        assert_eq!(stable_toposort(&[]).unwrap(), Vec::<usize>::new());
    }

    #[test]
    fn cycles() {
        assert_eq!(stable_toposort(&[vec![0]]).unwrap_err(), [0, 0]);
        assert_eq!(stable_toposort(&[vec![1], vec![0]]).unwrap_err(), [0, 1, 0]);
        // 0 waits on the cycle 2 → 3 → 4 → 2 without being part of it.
        let after = [vec![3], vec![], vec![3], vec![4], vec![2]];
        assert_eq!(stable_toposort(&after).unwrap_err(), [2, 3, 4, 2]);
    }
}
