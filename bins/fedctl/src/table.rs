//! Aligned text tables, with ANSI colour only when the caller says the output is a terminal
//! that wants it.

/// A colour for a cell, chosen by meaning rather than by hue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Healthy: Up, Ready, True.
    Good,
    /// Not there yet: Pending, Progressing.
    Warn,
    /// Broken: Down, Failed, Unreachable.
    Bad,
    /// Not known, or not applicable.
    Dim,
}

impl Tone {
    fn ansi(self) -> &'static str {
        match self {
            Self::Good => "\x1b[32m",
            Self::Warn => "\x1b[33m",
            Self::Bad => "\x1b[31m",
            Self::Dim => "\x1b[2m",
        }
    }
}

/// Whether to colour output: only on a terminal, and never when `NO_COLOR` is set.
pub fn use_colour(stdout_is_terminal: bool, no_colour: Option<&std::ffi::OsStr>) -> bool {
    stdout_is_terminal && no_colour.is_none()
}

/// One cell: its text and, optionally, its tone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    text: String,
    tone: Option<Tone>,
}

impl Cell {
    /// A plain cell.
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            tone: None,
        }
    }

    /// A cell with a tone.
    pub fn toned(text: impl Into<String>, tone: Tone) -> Self {
        Self {
            text: text.into(),
            tone: Some(tone),
        }
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Self::plain(s)
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Self::plain(s)
    }
}

/// A table: a header and rows, printed with columns aligned on their widest cell.
#[derive(Clone, Debug, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (missing cells print empty, extra ones are dropped).
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// Whether the table has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text, two spaces between columns, no trailing spaces. Widths count
    /// characters, not bytes, and never the colour codes, so colour does not break alignment.
    pub fn render(&self, colour: bool) -> String {
        let cols = self.header.len();
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.text.chars().count());
            }
        }
        let mut out = String::new();
        let header: Vec<Cell> = self.header.iter().map(|h| Cell::plain(h.clone())).collect();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, w) in widths.iter().enumerate().take(cols) {
                let cell = row.get(i);
                let text = cell.map_or("", |c| c.text.as_str());
                if i > 0 {
                    line.push_str("  ");
                }
                match cell.and_then(|c| c.tone).filter(|_| colour) {
                    Some(tone) => {
                        line.push_str(tone.ansi());
                        line.push_str(text);
                        line.push_str("\x1b[0m");
                    }
                    None => line.push_str(text),
                }
                if i + 1 < cols {
                    let pad = w.saturating_sub(text.chars().count());
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&["DIALER", "ACCEPTOR", "PHASE"]);
        t.row(vec![
            "east".into(),
            "central".into(),
            Cell::toned("Up", Tone::Good),
        ]);
        t.row(vec![
            "west-long-name".into(),
            "central".into(),
            Cell::toned("Down", Tone::Bad),
        ]);
        t
    }

    #[test]
    fn columns_align_on_the_widest_cell_without_trailing_spaces() {
        assert_eq!(
            sample().render(false),
            "DIALER          ACCEPTOR  PHASE\n\
             east            central   Up\n\
             west-long-name  central   Down\n"
        );
    }

    #[test]
    fn colour_wraps_the_text_and_keeps_the_alignment() {
        let mut t = Table::new(&["PHASE", "NEXT"]);
        t.row(vec![Cell::toned("Up", Tone::Good), "x".into()]);
        t.row(vec![Cell::toned("Pending", Tone::Warn), "y".into()]);
        assert_eq!(
            t.render(true),
            "PHASE    NEXT\n\x1b[32mUp\x1b[0m       x\n\x1b[33mPending\x1b[0m  y\n"
        );
    }

    #[test]
    fn short_rows_print_empty_cells_and_wide_characters_count_once() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["ü".into()]);
        t.row(vec!["xy".into(), "z".into()]);
        assert_eq!(t.render(false), "A   B\nü\nxy  z\n");
    }

    #[test]
    fn colour_only_on_a_terminal_without_no_colour() {
        assert!(use_colour(true, None));
        assert!(!use_colour(false, None));
        assert!(!use_colour(true, Some(std::ffi::OsStr::new("1"))));
        assert!(!use_colour(true, Some(std::ffi::OsStr::new(""))));
    }
}
