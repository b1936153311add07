//! The scheduler: a DAG of nodes (the stages a target needs), each run once all its dependencies are
//! done, at most `parallel` at a time. The first failure cancels every node that hasn't started and is
//! the error reported (nodes already running finish; their errors are dropped). Nodes the target doesn't
//! reach never run. The solver knows nothing of Dockerfiles: a node is an index and its dependencies.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Condvar, Mutex};

/// One node: the nodes it needs.
#[derive(Clone, Debug, Default)]
pub struct Node {
    pub deps: Vec<usize>,
}

struct State<T, E> {
    done: HashMap<usize, T>,
    started: BTreeSet<usize>,
    running: usize,
    failed: Option<E>,
}

/// The nodes `target` needs (itself included), in index order.
pub fn needed(nodes: &[Node], target: usize) -> BTreeSet<usize> {
    needed_all(nodes, &[target])
}

/// The nodes any of `targets` needs (themselves included), in index order.
pub fn needed_all(nodes: &[Node], targets: &[usize]) -> BTreeSet<usize> {
    let mut out = BTreeSet::new();
    let mut todo = targets.to_vec();
    while let Some(n) = todo.pop() {
        if n < nodes.len() && out.insert(n) {
            todo.extend(nodes[n].deps.iter().copied());
        }
    }
    out
}

/// Runs every node `target` needs; `run` gets the node and the outputs of its dependencies. Returns
/// the outputs of all nodes run, or the first error.
pub fn solve<T, E>(
    nodes: &[Node],
    target: usize,
    parallel: usize,
    run: impl Fn(usize, &HashMap<usize, T>) -> Result<T, E> + Sync,
) -> Result<HashMap<usize, T>, E>
where
    T: Clone + Send,
    E: Send,
{
    solve_all(nodes, &[target], parallel, run)
}

/// [`solve`] for several targets at once (one per platform of a multi-platform build): a node two
/// targets share runs once.
pub fn solve_all<T, E>(
    nodes: &[Node],
    targets: &[usize],
    parallel: usize,
    run: impl Fn(usize, &HashMap<usize, T>) -> Result<T, E> + Sync,
) -> Result<HashMap<usize, T>, E>
where
    T: Clone + Send,
    E: Send,
{
    let needed = needed_all(nodes, targets);
    let state: Mutex<State<T, E>> = Mutex::new(State {
        done: HashMap::new(),
        started: BTreeSet::new(),
        running: 0,
        failed: None,
    });
    let wake = Condvar::new();
    let lock = || state.lock().unwrap_or_else(|p| p.into_inner());
    let worker = || {
        loop {
            let mut st = lock();
            let (n, inputs) = loop {
                if st.failed.is_some() {
                    return;
                }
                let ready = needed.iter().copied().find(|n| {
                    !st.started.contains(n) && nodes[*n].deps.iter().all(|d| st.done.contains_key(d))
                });
                if let Some(n) = ready {
                    let inputs: HashMap<usize, T> =
                        nodes[n].deps.iter().map(|d| (*d, st.done[d].clone())).collect();
                    break (n, inputs);
                }
                if st.running == 0 {
                    // Nothing runs and nothing can start: all done (dependencies are acyclic).
                    wake.notify_all();
                    return;
                }
                st = wake.wait(st).unwrap_or_else(|p| p.into_inner());
            };
            st.started.insert(n);
            st.running += 1;
            drop(st);
            let r = run(n, &inputs);
            let mut st = lock();
            st.running -= 1;
            match r {
                Ok(out) => {
                    st.done.insert(n, out);
                }
                Err(e) => {
                    if st.failed.is_none() {
                        st.failed = Some(e);
                    }
                }
            }
            wake.notify_all();
        }
    };
    std::thread::scope(|s| {
        for _ in 0..parallel.clamp(1, needed.len().max(1)) {
            s.spawn(worker);
        }
    });
    let st = state.into_inner().unwrap_or_else(|p| p.into_inner());
    match st.failed {
        Some(e) => Err(e),
        None => Ok(st.done),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    fn nodes(deps: &[&[usize]]) -> Vec<Node> {
        deps.iter().map(|d| Node { deps: d.to_vec() }).collect()
    }

    #[test]
    fn dependencies_run_first_and_pass_their_outputs() {
        let g = nodes(&[&[], &[0], &[0, 1]]);
        let out = solve(&g, 2, 4, |n, inputs: &HashMap<usize, usize>| {
            Ok::<_, ()>(n + inputs.values().sum::<usize>())
        })
        .unwrap();
        assert_eq!(out[&0], 0);
        assert_eq!(out[&1], 1);
        assert_eq!(out[&2], 3);
    }

    #[test]
    fn unreached_nodes_never_run() {
        let g = nodes(&[&[], &[], &[0]]);
        let ran = Mutex::new(Vec::new());
        solve(&g, 2, 2, |n, _: &HashMap<usize, ()>| {
            ran.lock().unwrap().push(n);
            Ok::<_, ()>(())
        })
        .unwrap();
        let mut ran = ran.into_inner().unwrap();
        ran.sort();
        assert_eq!(ran, vec![0, 2]);
        assert_eq!(needed(&g, 2).into_iter().collect::<Vec<_>>(), vec![0, 2]);
    }

    #[test]
    fn independent_nodes_overlap() {
        let g = nodes(&[&[], &[], &[0, 1]]);
        let spans = Mutex::new(HashMap::new());
        solve(&g, 2, 2, |n, _: &HashMap<usize, ()>| {
            let start = Instant::now();
            if n < 2 {
                std::thread::sleep(Duration::from_millis(150));
            }
            spans.lock().unwrap().insert(n, (start, Instant::now()));
            Ok::<_, ()>(())
        })
        .unwrap();
        let s = spans.into_inner().unwrap();
        assert!(
            s[&0].0 < s[&1].1 && s[&1].0 < s[&0].1,
            "0 and 1 ran at the same time"
        );
        assert!(s[&2].0 >= s[&0].1 && s[&2].0 >= s[&1].1, "2 waited for both");
    }

    #[test]
    fn parallelism_is_bounded() {
        let g = nodes(&[&[], &[], &[], &[], &[0, 1, 2, 3]]);
        let now = AtomicUsize::new(0);
        let max = AtomicUsize::new(0);
        solve(&g, 4, 2, |_, _: &HashMap<usize, ()>| {
            let c = now.fetch_add(1, Ordering::SeqCst) + 1;
            max.fetch_max(c, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(30));
            now.fetch_sub(1, Ordering::SeqCst);
            Ok::<_, ()>(())
        })
        .unwrap();
        assert_eq!(max.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn first_failure_cancels_what_has_not_started_and_is_reported() {
        // 0 fails at once; 1 (slow, independent) is running and fails later; 2 needs 0; 3 needs 1.
        let g = nodes(&[&[], &[], &[0], &[1], &[2, 3]]);
        let ran = Mutex::new(Vec::new());
        let r = solve(&g, 4, 2, |n, _: &HashMap<usize, ()>| {
            ran.lock().unwrap().push(n);
            match n {
                0 => Err("first"),
                1 => {
                    std::thread::sleep(Duration::from_millis(100));
                    Err("later")
                }
                _ => Ok(()),
            }
        });
        assert_eq!(r.unwrap_err(), "first");
        let ran = ran.into_inner().unwrap();
        assert!(
            !ran.contains(&2) && !ran.contains(&3) && !ran.contains(&4),
            "{ran:?}"
        );
    }

    #[test]
    fn a_node_two_targets_share_runs_once() {
        let g = nodes(&[&[], &[0], &[0], &[]]);
        let ran = Mutex::new(Vec::new());
        let out = solve_all(&g, &[1, 2], 2, |n, _: &HashMap<usize, ()>| {
            ran.lock().unwrap().push(n);
            Ok::<_, ()>(())
        })
        .unwrap();
        let mut ran = ran.into_inner().unwrap();
        ran.sort();
        assert_eq!(ran, vec![0, 1, 2]);
        assert!(out.contains_key(&1) && out.contains_key(&2));
    }

    #[test]
    fn a_failure_stops_a_serial_chain() {
        let g = nodes(&[&[], &[0], &[1]]);
        let count = AtomicUsize::new(0);
        let r = solve(&g, 2, 1, |n, _: &HashMap<usize, ()>| {
            count.fetch_add(1, Ordering::SeqCst);
            if n == 1 { Err(n) } else { Ok(()) }
        });
        assert_eq!(r.unwrap_err(), 1);
        assert_eq!(count.load(Ordering::SeqCst), 2);
    }
}
