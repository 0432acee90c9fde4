//! The files under watch, and the saves that should rerun the tests.
//!
//! Each directory under the rootdir that is neither skipped (`filter`) nor
//! named by a `.gitignore` gets its own non-recursive inotify watch: a
//! recursive watch would also spend one on every directory of an ignored
//! `.venv` or `node_modules`, and run out. `Tree` keeps the directories
//! and the relevant files (their count is the status line's "watching N
//! files"), and turns each batch of changed paths into "rerun or not" and
//! the directories to start or stop watching. The watcher itself is
//! `notify` (inotify, FSEvents), batched by `notify-debouncer-full`: an
//! editor's save (a temporary file renamed over the old one) or a
//! formatter rewriting a file just after arrives as one batch. Reads are
//! dropped (inotify reports every open, and each run opens every module):
//! only writes, creations, removals and renames count.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};

use super::filter;

/// How long a path must stay quiet before its batch is reported: enough
/// for a save's rename and a format-on-save to land together, short
/// enough that the result can be on screen half a second after a save.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// What `.gitignore` files (and `.git/info/exclude`) leave out.
struct Ignores {
    /// Shallowest first; a deeper file's rules win over a shallower's.
    matchers: Vec<Gitignore>,
}

impl Ignores {
    /// The ignore files of `root` and of its ancestors up to the
    /// repository's top (the directory holding `.git`), if there is one.
    fn above(root: &Path) -> Ignores {
        let top = root.ancestors().find(|dir| dir.join(".git").exists());
        let mut ignores = Ignores { matchers: Vec::new() };
        if let Some(top) = top {
            let mut chain: Vec<&Path> = root.ancestors().take_while(|dir| *dir != top).collect();
            chain.push(top);
            for dir in chain.into_iter().rev() {
                ignores.add_dir(dir);
            }
            let mut exclude = GitignoreBuilder::new(top);
            exclude.add(top.join(".git/info/exclude"));
            ignores.matchers.insert(0, exclude.build().unwrap_or_else(|_| Gitignore::empty()));
        } else {
            ignores.add_dir(root);
        }
        // A project inside an ignored directory of another repository (a
        // checkout under `build/`) is still watched: only its own rules apply.
        if ignores.ignored(root, true) {
            ignores.matchers.retain(|m| m.path().starts_with(root));
        }
        ignores
    }

    /// `dir/.gitignore`, if any.
    fn add_dir(&mut self, dir: &Path) {
        let file = dir.join(".gitignore");
        if file.is_file() {
            self.matchers.push(Gitignore::new(file).0);
        }
    }

    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        for matcher in self.matchers.iter().rev().filter(|m| path.starts_with(m.path())) {
            let found = matcher.matched_path_or_any_parents(path, is_dir);
            if found.is_ignore() {
                return true;
            }
            if found.is_whitelist() {
                return false;
            }
        }
        false
    }
}

/// The directories watched and the relevant files in them.
pub struct Tree {
    root: PathBuf,
    ignores: Ignores,
    dirs: BTreeSet<PathBuf>,
    files: BTreeSet<PathBuf>,
}

/// What one changed path means.
#[derive(Debug, Default, PartialEq)]
pub struct Applied {
    /// A relevant file was written, created or removed: rerun.
    pub rerun: bool,
    pub new_dirs: Vec<PathBuf>,
    pub gone_dirs: Vec<PathBuf>,
}

impl Tree {
    /// Walks `root` (which must be absolute).
    pub fn scan(root: &Path) -> Tree {
        let mut tree = Tree {
            root: root.to_path_buf(),
            ignores: Ignores::above(root),
            dirs: BTreeSet::new(),
            files: BTreeSet::new(),
        };
        tree.walk(root, &mut Vec::new());
        tree
    }

    /// The relevant files under watch.
    pub fn files(&self) -> usize {
        self.files.len()
    }

    pub fn dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.dirs.iter()
    }

    /// Adds `dir` and what is below it; the directories added go to `new_dirs`.
    fn walk(&mut self, dir: &Path, new_dirs: &mut Vec<PathBuf>) -> bool {
        if !self.dirs.insert(dir.to_path_buf()) {
            return false;
        }
        new_dirs.push(dir.to_path_buf());
        if dir != self.root {
            self.ignores.add_dir(dir);
        }
        let Ok(entries) = std::fs::read_dir(dir) else { return false };
        let mut found = false;
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() && self.watched_dir(&path) => found |= self.walk(&path, new_dirs),
                Ok(kind) if kind.is_dir() => {}
                Ok(_) if self.relevant(&path) => found |= self.files.insert(path),
                _ => {}
            }
        }
        found
    }

    fn watched_dir(&self, dir: &Path) -> bool {
        let skipped = dir.file_name().and_then(|n| n.to_str()).is_none_or(filter::skipped_dir);
        !skipped && !dir.join("pyvenv.cfg").exists() && !self.ignores.ignored(dir, true)
    }

    fn relevant(&self, file: &Path) -> bool {
        filter::relevant_file(file)
            && !filter::under_skipped_dir(&self.root, file)
            && !self.ignores.ignored(file, false)
    }

    /// What a change at `path` means, the tree updated to match.
    pub fn apply(&mut self, path: &Path) -> Applied {
        let mut applied = Applied::default();
        if !path.starts_with(&self.root) || path == self.root {
            return applied;
        }
        if path.file_name().is_some_and(|n| n == ".gitignore") {
            return self.rescan();
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => {
                let parent_watched = path.parent().is_some_and(|p| self.dirs.contains(p));
                if parent_watched && self.watched_dir(path) {
                    applied.rerun = self.walk(path, &mut applied.new_dirs);
                }
            }
            Ok(_) => {
                if self.relevant(path) {
                    self.files.insert(path.to_path_buf());
                    applied.rerun = true;
                }
            }
            Err(_) => {
                applied.rerun = self.files.remove(path);
                if self.dirs.contains(path) {
                    applied.gone_dirs = self.dirs.iter().filter(|d| d.starts_with(path)).cloned().collect();
                    self.dirs.retain(|d| !d.starts_with(path));
                    let before = self.files.len();
                    self.files.retain(|f| !f.starts_with(path));
                    applied.rerun |= self.files.len() != before;
                }
            }
        }
        applied
    }

    /// A `.gitignore` changed: the walk again, and the difference in
    /// directories. Files that appear or disappear by it are no save.
    fn rescan(&mut self) -> Applied {
        let fresh = Tree::scan(&self.root);
        let new_dirs = fresh.dirs.difference(&self.dirs).cloned().collect();
        let gone_dirs = self.dirs.difference(&fresh.dirs).cloned().collect();
        *self = fresh;
        Applied { rerun: false, new_dirs, gone_dirs }
    }
}

/// The running watcher: dropping it stops it.
pub struct Watcher {
    debouncer: Debouncer<notify::RecommendedWatcher, RecommendedCache>,
}

impl Watcher {
    /// Watches every directory of `tree`; `report` gets each batch of
    /// changed paths (or the watcher's error) on the debouncer's thread.
    pub fn start(
        tree: &Tree,
        report: impl Fn(Result<Vec<PathBuf>, String>) + Send + 'static,
    ) -> Result<Watcher, notify::Error> {
        let debouncer = new_debouncer(DEBOUNCE, None, move |batch: DebounceEventResult| {
            let changed = batch.map(|events| {
                let writes = events.into_iter().filter(|e| !e.kind.is_access());
                writes.flat_map(|e| e.event.paths).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>()
            });
            let errors =
                |errors: Vec<notify::Error>| errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
            match changed {
                Ok(paths) if paths.is_empty() => {}
                other => report(other.map_err(errors)),
            }
        })?;
        let mut watcher = Watcher { debouncer };
        watcher.watch(tree.dirs())?;
        Ok(watcher)
    }

    pub fn watch<'a>(&mut self, dirs: impl IntoIterator<Item = &'a PathBuf>) -> Result<(), notify::Error> {
        for dir in dirs {
            match self.debouncer.watch(dir, RecursiveMode::NonRecursive) {
                // Gone again before we got to it: nothing to watch.
                Err(notify::Error { kind: notify::ErrorKind::PathNotFound, .. }) => {}
                Err(e) if matches!(&e.kind, notify::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound) => {
                }
                other => other?,
            }
        }
        Ok(())
    }

    pub fn unwatch<'a>(&mut self, dirs: impl IntoIterator<Item = &'a PathBuf>) {
        for dir in dirs {
            // inotify has already dropped the watch of a removed directory.
            let _ = self.debouncer.unwatch(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_with(files: &[&str]) -> (tempfile::TempDir, Tree) {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "x = 1\n").unwrap();
        }
        let tree = Tree::scan(dir.path());
        (dir, tree)
    }

    #[test]
    fn counts_relevant_files_outside_ignored_and_skipped_directories() {
        let (dir, _) = tree_with(&[
            ".gitignore",
            "pytest.ini",
            "tests/test_a.py",
            "pkg/mod.py",
            "pkg/data.json",
            "generated/gen.py",
            ".venv/lib/x.py",
            "myenv/pyvenv.cfg",
            "myenv/lib/y.py",
            "pkg/__pycache__/mod.cpython-312.pyc",
            ".rpytest/history.json",
        ]);
        std::fs::write(dir.path().join(".gitignore"), "generated/\n").unwrap();
        let tree = Tree::scan(dir.path());
        assert_eq!(tree.files(), 3, "{:?}", tree.files);
        assert!(tree.dirs.contains(&dir.path().join("pkg")));
        assert!(!tree.dirs.contains(&dir.path().join("generated")));
        assert!(!tree.dirs.contains(&dir.path().join("myenv")));
    }

    #[test]
    fn a_save_a_new_package_and_a_deletion_rerun_other_writes_do_not() {
        let (dir, mut tree) = tree_with(&["pytest.ini", "tests/test_a.py"]);
        let test_a = dir.path().join("tests/test_a.py");
        assert!(tree.apply(&test_a).rerun);
        let junk = dir.path().join("tests/.test_a.py.swp");
        std::fs::write(&junk, "").unwrap();
        assert!(!tree.apply(&junk).rerun);
        let cache = dir.path().join(".pytest_cache");
        std::fs::create_dir(&cache).unwrap();
        assert_eq!(tree.apply(&cache), Applied::default());

        let pkg = dir.path().join("pkg");
        std::fs::create_dir_all(pkg.join("sub")).unwrap();
        std::fs::write(pkg.join("sub/m.py"), "").unwrap();
        let applied = tree.apply(&pkg);
        assert!(applied.rerun);
        assert_eq!(applied.new_dirs, vec![pkg.clone(), pkg.join("sub")]);
        assert_eq!(tree.files(), 3);

        std::fs::remove_dir_all(&pkg).unwrap();
        let applied = tree.apply(&pkg);
        assert!(applied.rerun);
        assert_eq!(applied.gone_dirs, vec![pkg.clone(), pkg.join("sub")]);
        std::fs::remove_file(&test_a).unwrap();
        assert!(tree.apply(&test_a).rerun);
        assert_eq!(tree.files(), 1);
    }

    #[test]
    fn the_rules_of_the_repository_above_apply_unless_they_ignore_the_rootdir() {
        let (repo, _) = tree_with(&[".git/HEAD", "proj/pytest.ini", "proj/gen/x.py", "build/proj/pytest.ini"]);
        std::fs::write(repo.path().join(".gitignore"), "gen/\nbuild/\n").unwrap();
        assert_eq!(Tree::scan(&repo.path().join("proj")).files(), 1);
        assert_eq!(Tree::scan(&repo.path().join("build/proj")).files(), 1);
    }

    #[test]
    fn a_changed_gitignore_rescans_without_a_rerun() {
        let (dir, mut tree) = tree_with(&["pytest.ini", "out/gen.py"]);
        assert_eq!(tree.files(), 2);
        let gitignore = dir.path().join(".gitignore");
        std::fs::write(&gitignore, "out/\n").unwrap();
        let applied = tree.apply(&gitignore);
        assert!(!applied.rerun);
        assert_eq!(applied.gone_dirs, vec![dir.path().join("out")]);
        assert_eq!(tree.files(), 1);
        assert!(!tree.apply(&dir.path().join("out/gen.py")).rerun);
    }
}
