//! The report: titled tables with notes, printed as aligned text and written as markdown.

use std::fmt::Write as _;

/// One table of the report.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// Heading above the table.
    pub title: String,
    /// Column headers.
    pub headers: Vec<String>,
    /// Rows; a row shorter than the headers is padded with empty cells.
    pub rows: Vec<Vec<String>>,
    /// Lines printed under the table (how it was measured, what is simulated).
    pub notes: Vec<String>,
}

impl Table {
    /// An empty table with a title and headers.
    pub fn new(title: &str, headers: &[&str]) -> Self {
        Self {
            title: title.to_owned(),
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            ..Self::default()
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Adds a note.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    fn cell(row: &[String], i: usize) -> &str {
        row.get(i).map_or("", String::as_str)
    }

    /// Aligned text for the terminal.
    pub fn text(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|i| {
                self.rows
                    .iter()
                    .map(|r| Self::cell(r, i).chars().count())
                    .chain([self.headers[i].chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &dyn Fn(usize) -> String| {
            (0..self.headers.len())
                .map(|i| format!("{:<w$}", cells(i), w = widths[i]))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        let mut out = format!("== {} ==\n", self.title);
        out.push_str(&line(&|i| self.headers[i].clone()));
        out.push('\n');
        for row in &self.rows {
            out.push_str(&line(&|i| Self::cell(row, i).to_owned()));
            out.push('\n');
        }
        for note in &self.notes {
            let _ = writeln!(out, "  {note}");
        }
        out
    }

    /// GitHub-flavoured markdown (pipes in cells escaped).
    pub fn markdown(&self) -> String {
        let escape = |s: &str| s.replace('|', "\\|");
        let mut out = format!("### {}\n\n", self.title);
        let _ = writeln!(
            out,
            "| {} |",
            self.headers
                .iter()
                .map(|h| escape(h))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(out, "|{}", "---|".repeat(self.headers.len()));
        for row in &self.rows {
            let cells: Vec<String> = (0..self.headers.len())
                .map(|i| escape(Self::cell(row, i)))
                .collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        if !self.notes.is_empty() {
            out.push('\n');
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }
}

/// Seconds with one decimal.
pub fn secs(d: std::time::Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// KiB as MiB with one decimal, `?` when unknown.
pub fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(
        || "?".to_owned(),
        |k| format!("{:.1} MiB", k as f64 / 1024.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new("Convergence", &["members", "to Ready"]);
        t.row(vec!["3".into(), "4.1 s".into()]);
        t.row(vec!["32".into()]);
        t.note("production timings");
        t
    }

    #[test]
    fn text_aligns_columns_and_pads_short_rows() {
        let text = sample().text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "== Convergence ==");
        assert_eq!(lines[1], "members  to Ready");
        assert_eq!(lines[2], "3        4.1 s");
        assert_eq!(lines[3], "32");
        assert_eq!(lines[4], "  production timings");
    }

    #[test]
    fn markdown_has_a_header_separator_and_escapes_pipes() {
        let mut t = sample();
        t.row(vec!["a|b".into(), "c".into()]);
        let md = t.markdown();
        assert!(md.starts_with("### Convergence\n\n| members | to Ready |\n|---|---|\n"));
        assert!(md.contains("| 32 |  |\n"), "{md}");
        assert!(md.contains("| a\\|b | c |"), "{md}");
        assert!(md.ends_with("- production timings\n"), "{md}");
    }

    #[test]
    fn units() {
        assert_eq!(secs(std::time::Duration::from_millis(4149)), "4.1 s");
        assert_eq!(mib(Some(1536)), "1.5 MiB");
        assert_eq!(mib(None), "?");
    }
}
