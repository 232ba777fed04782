//! The report as a list of blocks, written once and rendered twice: to Markdown and to one
//! self-contained HTML page, so that both always say the same thing.

use crate::charts::Chart;

/// A run of text.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Span {
    Text(String),
    Bold(String),
    Code(String),
    /// The range of a figure: in parentheses in Markdown, on its own line in HTML.
    Range(String),
}

pub(crate) fn text(s: impl Into<String>) -> Span {
    Span::Text(s.into())
}

pub(crate) fn bold(s: impl Into<String>) -> Span {
    Span::Bold(s.into())
}

pub(crate) fn code(s: impl Into<String>) -> Span {
    Span::Code(s.into())
}

/// Text in which `backquoted` parts are code.
pub(crate) fn ticks(s: &str) -> Vec<Span> {
    s.split('`')
        .enumerate()
        .filter(|(_, part)| !part.is_empty())
        .map(|(i, part)| if i % 2 == 1 { code(part) } else { text(part) })
        .collect()
}

/// A table cell.
#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct Cell {
    pub(crate) spans: Vec<Span>,
    /// The best figure of its column.
    pub(crate) best: bool,
    /// A figure to distrust (capped, or from a run that broke a guarantee).
    pub(crate) warn: bool,
}

impl Cell {
    pub(crate) fn plain(s: impl Into<String>) -> Cell {
        Cell {
            spans: vec![text(s)],
            ..Cell::default()
        }
    }
}

/// A block of the report.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Block {
    Title(String),
    Heading(String),
    Subheading(String),
    Para(Vec<Span>),
    List(Vec<Vec<Span>>),
    /// A table; `prose` if its cells are words (left-aligned) rather than figures.
    Table {
        head: Vec<String>,
        rows: Vec<Vec<Cell>>,
        prose: bool,
    },
    Chart(Chart),
    /// A section with nothing to show, and why.
    Missing(String),
    /// Shell commands.
    Commands(Vec<String>),
}

fn md_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '*' | '_' | '|' | '<' | '>' | '`' | '[' | ']') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn md_spans(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Span::Text(t) => md_escape(t),
            // Markdown's strong emphasis may not end in a space: keep it outside.
            Span::Bold(t) => {
                let trimmed = t.trim_end();
                format!("**{}**{}", md_escape(trimmed), &t[trimmed.len()..])
            }
            // A code span cannot hold its own delimiter; the report's code has none.
            Span::Code(t) => format!("`{}`", t.replace('`', "'")),
            Span::Range(t) => format!(" ({})", md_escape(t)),
        })
        .collect()
}

/// Renders `blocks` as Markdown; charts are linked to their SVG files.
pub(crate) fn markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Title(t) => out.push_str(&format!("# {}\n", md_escape(t))),
            Block::Heading(t) => out.push_str(&format!("## {}\n", md_escape(t))),
            Block::Subheading(t) => out.push_str(&format!("### {}\n", md_escape(t))),
            Block::Para(spans) => out.push_str(&format!("{}\n", md_spans(spans))),
            Block::List(items) => {
                for item in items {
                    out.push_str(&format!("- {}\n", md_spans(item)));
                }
            }
            Block::Table { head, rows, prose } => {
                let head: Vec<String> = head.iter().map(|h| md_escape(h)).collect();
                out.push_str(&format!("| {} |\n", head.join(" | ")));
                let rule: Vec<&str> = (0..head.len())
                    .map(|i| if i == 0 || *prose { "---" } else { "---:" })
                    .collect();
                out.push_str(&format!("|{}|\n", rule.join("|")));
                for row in rows {
                    let cells: Vec<String> = row
                        .iter()
                        .map(|c| {
                            let body = md_spans(&c.spans);
                            let bold = c.spans.iter().any(|s| matches!(s, Span::Bold(_)));
                            if c.best && !bold {
                                format!("**{body}**")
                            } else {
                                body
                            }
                        })
                        .collect();
                    out.push_str(&format!("| {} |\n", cells.join(" | ")));
                }
            }
            Block::Chart(chart) => out.push_str(&format!(
                "![{}]({})\n\n{}\n",
                md_escape(&chart.title),
                chart.file,
                md_spans(&ticks(&chart.caption))
            )),
            Block::Missing(why) => out.push_str(&format!("*No data: {}*\n", md_spans(&ticks(why)))),
            Block::Commands(lines) => {
                out.push_str("```sh\n");
                for line in lines {
                    out.push_str(line);
                    out.push('\n');
                }
                out.push_str("```\n");
            }
        }
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn html_spans(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| match s {
            Span::Text(t) => html_escape(t),
            Span::Bold(t) => format!("<strong>{}</strong>", html_escape(t)),
            Span::Code(t) => format!("<code>{}</code>", html_escape(t)),
            Span::Range(t) => format!("<br><span class=\"range\">{}</span>", html_escape(t)),
        })
        .collect()
}

const STYLE: &str = "\
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; max-width: 1100px; \
margin: 2em auto; padding: 0 1em; color: #1a1a1a; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { border-bottom: 1px solid #eee; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: .35em .6em; vertical-align: top; }
th { background: #f3f3f3; }
td:not(:first-child) { text-align: right; }
td:first-child { white-space: nowrap; }
table:not(.prose) td { white-space: nowrap; }
span.range { color: #666; font-size: .85em; font-weight: normal; }
table.prose td { text-align: left; }
td.best { background: #e3f4e6; font-weight: 600; }
td.warn { background: #fff3e0; }
code, pre { font-family: ui-monospace, 'SFMono-Regular', Menlo, Consolas, monospace; font-size: .92em; }
code { background: #f3f3f3; padding: 0 .25em; border-radius: 3px; }
pre code { background: none; padding: 0; }
td strong { white-space: nowrap; }
pre { background: #f6f8fa; padding: .8em 1em; overflow-x: auto; border-radius: 4px; }
figure { margin: 1em 0 2em; }
figure svg { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: .92em; margin-top: .4em; }
p.missing { color: #8a5a00; font-style: italic; }
";

/// Renders `blocks` as one HTML page, the charts' SVG inline.
pub(crate) fn html(blocks: &[Block]) -> String {
    let title = blocks
        .iter()
        .find_map(|b| match b {
            Block::Title(t) => Some(t.as_str()),
            _ => None,
        })
        .unwrap_or("bypass report");
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
        html_escape(title)
    );
    for block in blocks {
        match block {
            Block::Title(t) => out.push_str(&format!("<h1>{}</h1>\n", html_escape(t))),
            Block::Heading(t) => out.push_str(&format!("<h2>{}</h2>\n", html_escape(t))),
            Block::Subheading(t) => out.push_str(&format!("<h3>{}</h3>\n", html_escape(t))),
            Block::Para(spans) => out.push_str(&format!("<p>{}</p>\n", html_spans(spans))),
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    out.push_str(&format!("<li>{}</li>\n", html_spans(item)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table { head, rows, prose } => {
                out.push_str(if *prose {
                    "<table class=\"prose\">\n<thead><tr>"
                } else {
                    "<table>\n<thead><tr>"
                });
                for h in head {
                    out.push_str(&format!("<th>{}</th>", html_escape(h)));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for row in rows {
                    out.push_str("<tr>");
                    for c in row {
                        let class = match (c.best, c.warn) {
                            (true, _) => " class=\"best\"",
                            (false, true) => " class=\"warn\"",
                            _ => "",
                        };
                        out.push_str(&format!("<td{class}>{}</td>", html_spans(&c.spans)));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table>\n");
            }
            Block::Chart(chart) => out.push_str(&format!(
                "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>\n",
                inline_svg(&chart.svg),
                html_spans(&ticks(&chart.caption))
            )),
            Block::Missing(why) => out.push_str(&format!(
                "<p class=\"missing\">No data: {}</p>\n",
                html_spans(&ticks(why))
            )),
            Block::Commands(lines) => {
                out.push_str("<pre><code>");
                for line in lines {
                    out.push_str(&html_escape(line));
                    out.push('\n');
                }
                out.push_str("</code></pre>\n");
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The SVG document without an XML declaration, to sit inside HTML.
fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(start) => svg[start..].trim_end(),
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Block> {
        vec![
            Block::Title("bypass report".into()),
            Block::Para(vec![text("a <b> & "), bold("c*d "), code("run --x")]),
            Block::Table {
                head: vec!["backend".into(), "a|b".into()],
                rows: vec![vec![
                    Cell::plain("x"),
                    Cell {
                        spans: vec![text("1.2 M")],
                        best: true,
                        warn: false,
                    },
                ]],
                prose: false,
            },
            Block::Chart(Chart {
                file: "c.svg".into(),
                title: "T".into(),
                caption: "cap".into(),
                svg: "<?xml version=\"1.0\"?>\n<svg width=\"1\"></svg>\n".into(),
            }),
            Block::Missing("no criterion data".into()),
        ]
    }

    #[test]
    fn markdown_escapes_and_links_charts() {
        let md = markdown(&sample());
        assert!(md.starts_with("# bypass report\n\n"));
        assert!(md.contains("a \\<b\\> & **c\\*d** `run --x`"), "{md}");
        assert!(
            md.contains("| backend | a\\|b |\n|---|---:|\n| x | **1.2 M** |"),
            "{md}"
        );
        assert!(md.contains("![T](c.svg)"));
        assert!(md.contains("*No data: no criterion data*"));
    }

    #[test]
    fn html_is_self_contained() {
        let html = html(&sample());
        assert!(
            html.contains("<p>a &lt;b&gt; &amp; <strong>c*d </strong><code>run --x</code></p>")
        );
        assert!(html.contains("<td class=\"best\">1.2 M</td>"));
        assert!(html.contains("<figure>\n<svg width=\"1\"></svg>\n<figcaption>"));
        assert!(!html.contains("<?xml"));
        assert!(!html.contains("src=") && !html.contains("href="));
    }
}
