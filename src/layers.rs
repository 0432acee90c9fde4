//! The check that the modules stay in layers: each top-level module of
//! `src/` may name (`crate::x`) only the modules below it in the order
//! `lib.rs` documents under "Layers". A cycle between two folders makes
//! either hard to change or test alone; this test fails on the first arrow
//! that points up, naming the file and the line.

use std::path::{Path, PathBuf};

/// The documented order, top first: the backticked names of the first run
/// of `//!` lines that start with one, after "# Layers".
fn documented_order(lib: &str) -> Vec<String> {
    let listed = |line: &&str| line.starts_with("//! `");
    let lines = lib.lines().skip_while(|line| line.trim() != "//! # Layers").skip(1);
    let names = lines
        .skip_while(|line| !listed(line))
        .take_while(listed)
        .flat_map(|line| line.split('`').skip(1).step_by(2).map(str::to_string).collect::<Vec<_>>());
    names.collect()
}

/// Every `.rs` file of the module `name`: `src/<name>.rs` and everything under `src/<name>/`.
fn files_of(src: &Path, name: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let file = src.join(format!("{name}.rs"));
    if file.is_file() {
        files.push(file);
    }
    let mut dirs = vec![src.join(name)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The top-level modules a line of code names through `crate::`, groups
/// (`crate::{a, b::c}`) included.
fn named_modules(line: &str) -> Vec<String> {
    let ident = |text: &str| text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    let mut names = Vec::new();
    for (at, _) in line.match_indices("crate::") {
        if at > 0 && line[..at].ends_with('$') {
            continue;
        }
        let rest = &line[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let group = group.split('}').next().unwrap_or("");
                names.extend(group.split(',').map(|part| ident(part.trim())).filter(|n| !n.is_empty()));
            }
            None => names.push(ident(rest)),
        }
    }
    names
}

#[test]
fn no_module_names_one_above_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let order = documented_order(&lib);
    assert!(order.len() > 10, "lib.rs documents no layer order under `# Layers`: {order:?}");
    let mut upward = Vec::new();
    for (rank, module) in order.iter().enumerate() {
        let files = files_of(&root.join("src"), module);
        assert!(!files.is_empty(), "lib.rs names `{module}` in its layers, but src/ has no such module");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.lines().enumerate().filter(|(_, line)| !line.trim_start().starts_with("//"));
            for (number, line) in code {
                for named in named_modules(line) {
                    let above = order.iter().position(|m| *m == named).is_some_and(|other| other < rank);
                    if above {
                        let file = file.strip_prefix(root).unwrap().display();
                        upward.push(format!("{file}:{}: `{module}` names `{named}`, a layer above it", number + 1));
                    }
                }
            }
        }
    }
    assert!(upward.is_empty(), "arrows pointing up (move the item down, or pass it in):\n{}", upward.join("\n"));
}

#[test]
fn every_module_of_src_has_a_place_in_the_layers() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    let order = documented_order(&lib);
    let declared = lib.lines().filter_map(|line| line.strip_prefix("pub mod ")).map(|m| m.trim_end_matches(';'));
    let missing: Vec<&str> = declared.filter(|m| !order.iter().any(|o| o == m)).collect();
    assert!(missing.is_empty(), "add these modules to the layers in lib.rs: {missing:?}");
}

#[test]
fn the_scanner_reads_paths_and_groups() {
    assert_eq!(named_modules("use crate::report::events::RunEvent;"), ["report"]);
    assert_eq!(named_modules("use crate::{history, report::Stopped};"), ["history", "report"]);
    assert_eq!(named_modules("let x = crate::trace::event(|| crate::watch::X);"), ["trace", "watch"]);
    assert!(named_modules("$crate::foo").is_empty());
    let lib = "//! `q`\n//! # Layers\n//!\n//! Top first, `like` this:\n//! `a` > `b` >\n//! `c`\n//!\n//! `z`\n";
    assert_eq!(documented_order(lib), ["a", "b", "c"]);
}
