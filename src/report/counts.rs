//! The counts behind pytest's closing line (`1 failed, 9 passed, 2 warnings
//! in 0.12s`): per-category tallies, pytest's order and plurals, and the
//! colours of that line.

use super::render::{markup, sep, Mark};

/// Counts by pytest's report categories, in pytest's display order.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    entries: Vec<(String, usize)>,
    /// Of the deselected, those `--affected` left out: said after the count.
    pub unaffected: usize,
}

/// pytest's `KNOWN_TYPES`: their order in the counts line.
const KNOWN: &[&str] = &[
    "failed",
    "passed",
    "skipped",
    "deselected",
    "xfailed",
    "xpassed",
    "warnings",
    "error",
    "subtests passed",
    "subtests failed",
    "subtests skipped",
];

impl Counts {
    pub fn add(&mut self, category: &str, n: usize) {
        if category.is_empty() || n == 0 {
            return;
        }
        match self.entries.iter_mut().find(|(c, _)| c == category) {
            Some((_, count)) => *count += n,
            None => self.entries.push((category.to_string(), n)),
        }
    }

    pub fn get(&self, category: &str) -> usize {
        self.entries.iter().find(|(c, _)| c == category).map_or(0, |(_, n)| *n)
    }

    /// Known categories first in pytest's order, then others as they came.
    fn ordered(&self) -> Vec<(&str, usize)> {
        let mut out: Vec<(&str, usize)> = KNOWN.iter().map(|k| (*k, self.get(k))).filter(|(_, n)| *n > 0).collect();
        out.extend(self.entries.iter().filter(|(c, _)| !KNOWN.contains(&c.as_str())).map(|(c, n)| (c.as_str(), *n)));
        out
    }

    /// pytest's `_determine_main_color`: red on failures or errors; yellow on
    /// warnings, xpasses or a category pytest does not know; green when
    /// something passed (skips and xfails do not change that); else yellow.
    pub fn main_color(&self) -> Mark {
        let unknown = self.entries.iter().any(|(c, _)| !KNOWN.contains(&c.as_str()));
        if self.get("failed") > 0 || self.get("error") > 0 {
            Mark::Red
        } else if self.get("warnings") > 0 || self.get("xpassed") > 0 || unknown {
            Mark::Yellow
        } else if self.get("passed") > 0 {
            Mark::Green
        } else {
            Mark::Yellow
        }
    }

    /// pytest's `summary_stats` line, coloured as pytest colours it: each
    /// count in its own colour (bold when that is the main colour), the
    /// duration and the `=` rule (absent with `-q`) in the main colour.
    pub fn colored_line(&self, duration: &str, width: Option<usize>) -> String {
        let main = self.main_color();
        let mut parts: Vec<String> = self
            .ordered()
            .into_iter()
            .map(|(key, n)| {
                let color = color_for(key);
                let marks: &[Mark] = if color == main { &[color, Mark::Bold] } else { &[color] };
                markup(&self.part(key, n), marks)
            })
            .collect();
        if parts.is_empty() {
            parts.push(markup("no tests ran", &[Mark::Yellow]));
        }
        let mut msg = parts.join(", ") + &markup(&format!(" in {duration}"), &[main]);
        let Some(width) = width else { return markup(&msg, &[main]) };
        msg += &format!("\x1b[{}m", main.code());
        let plain = format!("{} in {duration}", self.phrase());
        let rule = sep('=', Some(&plain), width).replacen(&plain, &msg, 1);
        markup(&rule, &[main])
    }

    /// `1 failed, 9 passed, 2 warnings, 1 error`, or `no tests ran`.
    pub fn phrase(&self) -> String {
        let parts: Vec<String> = self.ordered().into_iter().map(|(key, n)| self.part(key, n)).collect();
        if parts.is_empty() {
            "no tests ran".to_string()
        } else {
            parts.join(", ")
        }
    }
}

impl Counts {
    /// `3 passed`; the deselected say how many of them `--affected` left
    /// out: `12 deselected (unaffected)`, or `(10 unaffected)` beside `-k`'s.
    fn part(&self, key: &str, n: usize) -> String {
        let text = format!("{n} {}", plural(key, n));
        match (key, self.unaffected) {
            ("deselected", 0) => text,
            ("deselected", u) if u == n => format!("{text} (unaffected)"),
            ("deselected", u) => format!("{text} ({u} unaffected)"),
            _ => text,
        }
    }
}

/// pytest's `_make_plural`.
fn plural(noun: &str, count: usize) -> String {
    match noun {
        "error" | "warnings" | "test" => {
            let noun = noun.replace("warnings", "warning");
            if count == 1 {
                noun
            } else {
                noun + "s"
            }
        }
        _ => noun.to_string(),
    }
}

/// pytest's `_color_for_type`.
fn color_for(category: &str) -> Mark {
    match category {
        "failed" | "error" | "subtests failed" => Mark::Red,
        "passed" | "subtests passed" => Mark::Green,
        _ => Mark::Yellow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_line_wording_and_order() {
        let mut c = Counts::default();
        c.add("passed", 9);
        c.add("failed", 1);
        c.add("", 5);
        c.add("warnings", 1);
        c.add("error", 2);
        c.add("skipped", 1);
        assert_eq!(c.phrase(), "1 failed, 9 passed, 1 skipped, 1 warning, 2 errors");
        assert_eq!(Counts::default().phrase(), "no tests ran");
    }

    #[test]
    fn colored_counts_line_is_pytests_bytes() {
        let mut c = Counts::default();
        c.add("passed", 3);
        c.add("warnings", 2);
        // Copied from `pytest --color=yes` (COLUMNS=80).
        assert_eq!(
            c.colored_line("0.01s", Some(80)),
            "\x1b[33m======================== \x1b[32m3 passed\x1b[0m, \x1b[33m\x1b[1m2 warnings\x1b[0m\
             \x1b[33m in 0.01s\x1b[0m\x1b[33m =========================\x1b[0m"
        );
        // -q: no rule, the whole line wrapped in the main colour.
        assert_eq!(
            c.colored_line("0.01s", None),
            "\x1b[33m\x1b[32m3 passed\x1b[0m, \x1b[33m\x1b[1m2 warnings\x1b[0m\x1b[33m in 0.01s\x1b[0m\x1b[0m"
        );
    }

    #[test]
    fn main_color_follows_pytest() {
        let of = |cats: &[&str]| {
            let mut c = Counts::default();
            for cat in cats {
                c.add(cat, 1);
            }
            c.main_color()
        };
        assert_eq!(of(&["passed", "skipped", "xfailed", "deselected"]), Mark::Green);
        assert_eq!(of(&["passed", "xpassed"]), Mark::Yellow);
        assert_eq!(of(&["passed", "warnings"]), Mark::Yellow);
        assert_eq!(of(&["passed", "something new"]), Mark::Yellow);
        assert_eq!(of(&["skipped"]), Mark::Yellow);
        assert_eq!(of(&["passed", "error"]), Mark::Red);
    }
}
