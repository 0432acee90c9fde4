//! `--dist` modes: which tests must run together on one worker.
//!
//! xdist users choose a mode for their fixtures' sake: `loadscope` and
//! `loadfile` keep a module's (or class's) tests on one worker so a
//! module-scoped fixture is set up once, `loadgroup` keeps tests marked with
//! the same `@pytest.mark.xdist_group` together. rpytest keeps those
//! economics and still schedules by duration: each mode only decides the
//! *units* of dispatch (xdist's grouping rules, copied exactly), and the run
//! queue orders the units longest first (LPT on the groups' summed
//! durations). `load` makes every test its own unit.

/// A `--dist` mode rpytest honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistMode {
    /// Every test on its own, longest first (the default).
    Load,
    /// Tests of one module, or one class, go to one worker.
    LoadScope,
    /// Tests of one file go to one worker.
    LoadFile,
    /// Tests sharing an `xdist_group` name go to one worker.
    LoadGroup,
    /// No distribution: one worker, collection order (plain pytest).
    No,
}

impl DistMode {
    /// Parses a `--dist` value. `worksteal` is `load`: dispatch is pull-based
    /// already, so an idle worker always takes the next queued work.
    pub fn parse(text: &str) -> Result<DistMode, String> {
        match text {
            "load" | "worksteal" => Ok(DistMode::Load),
            "loadscope" => Ok(DistMode::LoadScope),
            "loadfile" => Ok(DistMode::LoadFile),
            "loadgroup" => Ok(DistMode::LoadGroup),
            "no" => Ok(DistMode::No),
            "each" => Err("'each' (run every test on every worker) is not supported by rpytest; \
                           run `python -m pytest -n N --dist each` for that"
                .to_string()),
            other => Err(format!(
                "invalid --dist mode '{other}': expected load, loadscope, loadfile, loadgroup, worksteal or no"
            )),
        }
    }

    /// The key that binds a test to others; `None` means it travels alone.
    /// `group` is the test's `xdist_group` name, if marked.
    pub fn key<'a>(self, nodeid: &'a str, group: Option<&'a str>) -> Option<&'a str> {
        match self {
            DistMode::Load | DistMode::No => None,
            // xdist: nodeid.rsplit("::", 1)[0]
            DistMode::LoadScope => Some(nodeid.rsplit_once("::").map_or(nodeid, |(scope, _)| scope)),
            // xdist: nodeid.split("::", 1)[0]
            DistMode::LoadFile => Some(nodeid.split_once("::").map_or(nodeid, |(file, _)| file)),
            DistMode::LoadGroup => group,
        }
    }
}

/// Splits tests (node id, xdist_group) into dispatch units. Each unit lists
/// test indices in collection order; units appear in the order of their
/// first test.
pub fn units(mode: DistMode, tests: &[(&str, Option<&str>)]) -> Vec<Vec<usize>> {
    let mut units: Vec<Vec<usize>> = Vec::new();
    let mut unit_of_key: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (index, (nodeid, group)) in tests.iter().enumerate() {
        match mode.key(nodeid, *group) {
            None => units.push(vec![index]),
            Some(key) => match unit_of_key.get(key) {
                Some(&unit) => units[unit].push(index),
                None => {
                    unit_of_key.insert(key, units.len());
                    units.push(vec![index]);
                }
            },
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDS: [(&str, Option<&str>); 6] = [
        ("a.py::test_1", None),
        ("a.py::T::test_2", Some("db")),
        ("a.py::T::test_3", None),
        ("b.py::test_4[x::y]", Some("db")),
        ("a.py::test_5", None),
        ("b.py::test_6", Some("net")),
    ];

    #[test]
    fn load_makes_every_test_a_unit() {
        assert_eq!(units(DistMode::Load, &IDS).len(), 6);
    }

    #[test]
    fn loadscope_groups_by_module_or_class_like_xdist() {
        // xdist's rsplit("::", 1) also splits inside a parameter id.
        let u = units(DistMode::LoadScope, &IDS);
        assert_eq!(u, vec![vec![0, 4], vec![1, 2], vec![3], vec![5]]);
    }

    #[test]
    fn loadfile_groups_by_file() {
        assert_eq!(units(DistMode::LoadFile, &IDS), vec![vec![0, 1, 2, 4], vec![3, 5]]);
    }

    #[test]
    fn loadgroup_binds_marked_tests_and_leaves_the_rest_alone() {
        let u = units(DistMode::LoadGroup, &IDS);
        assert_eq!(u, vec![vec![0], vec![1, 3], vec![2], vec![4], vec![5]]);
    }

    #[test]
    fn parsing_maps_worksteal_and_refuses_each() {
        assert_eq!(DistMode::parse("worksteal"), Ok(DistMode::Load));
        assert_eq!(DistMode::parse("loadgroup"), Ok(DistMode::LoadGroup));
        assert!(DistMode::parse("each").unwrap_err().contains("not supported"));
        assert!(DistMode::parse("roundrobin").unwrap_err().contains("loadscope"));
    }
}
