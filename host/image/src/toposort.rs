//! Stable topological sort with cycle reporting, for the service start order.
//!
//! Nodes are `0..n` (config order). Each node lists the nodes it must come
//! after. Among the nodes whose dependencies are all placed, the lowest
//! index goes next, so the result keeps config order wherever the
//! dependencies leave a choice. Runs in O((n + edges) log n); finding a
//! cycle in O(n + edges).
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Sort `after` (node → nodes it comes after). On a cycle, returns it as a
/// path that starts and ends at the same node, following `after` edges and
/// starting from its lowest node: `[a, b, a]` means a is after b is after a.
/// Edges to nodes outside `0..n` are ignored.
pub fn stable_toposort(after: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = after.len();
    let mut waiting: Vec<usize> = vec![0; n];
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    // The last node that listed each dependency: drops duplicate edges of a
    // node without a per-node search.
    let mut last_listed_by: Vec<Option<usize>> = vec![None; n];
    for (node, deps) in after.iter().enumerate() {
        for &d in deps {
            let Some(last) = last_listed_by.get_mut(d) else {
                continue;
            };
            if *last == Some(node) {
                continue;
            }
            *last = Some(node);
            if let (Some(w), Some(ds)) = (waiting.get_mut(node), dependents.get_mut(d)) {
                *w += 1;
                ds.push(node);
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = waiting
        .iter()
        .enumerate()
        .filter(|(_, &w)| w == 0)
        .map(|(i, _)| Reverse(i))
        .collect();
    let mut order = Vec::with_capacity(n);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &d in dependents.get(i).map_or(&[][..], Vec::as_slice) {
            if let Some(w) = waiting.get_mut(d) {
                *w = w.saturating_sub(1);
                if *w == 0 {
                    ready.push(Reverse(d));
                }
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
    let stuck = |i: usize| waiting.get(i).is_some_and(|&w| w > 0);
    let mut path: Vec<usize> = Vec::new();
    // Where each node is on `path`, so a repeat is found in O(1).
    let mut on_path: Vec<Option<usize>> = vec![None; after.len()];
    let mut cur = (0..after.len()).find(|&i| stuck(i)).unwrap_or(0);
    loop {
        let slot = on_path.get_mut(cur);
        if let Some(&mut Some(start)) = slot {
            let mut cycle = path.split_off(start);
            // Start from the lowest node for a stable message.
            let min = cycle
                .iter()
                .enumerate()
                .min_by_key(|(_, v)| **v)
                .map_or(0, |(k, _)| k);
            cycle.rotate_left(min);
            if let Some(&first) = cycle.first() {
                cycle.push(first);
            }
            return cycle;
        }
        match slot {
            Some(s) => *s = Some(path.len()),
            // Only reachable for an empty graph or an edge out of range.
            None => return vec![cur, cur],
        }
        path.push(cur);
        cur = after
            .get(cur)
            .and_then(|deps| deps.iter().copied().filter(|&d| stuck(d)).min())
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
