//! The README's tables, for the tests that hold them to the code (status codes, configuration,
//! metrics): a table that drifts from what the function does misleads the people operating it.

/// The rows (cells trimmed, header and separator dropped) of the first table after `heading`.
pub fn table(heading: &str) -> Vec<Vec<String>> {
    const README: &str = include_str!("../README.md");
    let after =
        README.split_once(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("README has no heading {heading:?}")).1;
    let rows: Vec<Vec<String>> = after
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .map(|line| line.trim_matches('|').split('|').map(|cell| cell.trim().to_owned()).collect())
        .collect();
    assert!(!rows.is_empty(), "README has no table under {heading:?}");
    rows
}

/// The `code` spans of a cell, in order.
pub fn code_spans(cell: &str) -> Vec<&str> {
    cell.split('`').skip(1).step_by(2).collect()
}
