//! The report: assembled from the results and criterion's estimates, written as
//! `report.md`, `report.html` and one SVG file per chart.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::charts::{self, Chart, Colors};
use crate::criterion::CriterionData;
use crate::doc::{self, Block, Cell, Span, bold, code, text};
use crate::format;
use crate::recommend::{
    self, BUS_WEIGHTING, CAP, MEASURED_MARGIN, Measure, NEAREST_TO_SLOW_CALLBACKS, OverallDefault,
    Recommendation, SINGLE_RUN_MARGIN, Verdict, WEIGHTING, Weighting, Workload,
};
use crate::schema::{
    BenchGroup, FLOOR, Machine, Operation, RunResult, Scenario, ScenarioKind, Sweep,
};
use crate::stats::Spread;

/// What a report is made from.
#[derive(Debug)]
pub struct ReportInput<'a> {
    /// The runs of `results.json`.
    pub results: &'a [RunResult],
    /// Where they were read from, as the report should name it.
    pub results_source: String,
    /// Criterion's estimates (possibly none).
    pub criterion: &'a CriterionData,
    /// The commands that reproduce the report, one a line.
    pub commands: Vec<String>,
    /// When the report is made, in seconds since the Unix epoch.
    pub generated_unix_s: u64,
}

/// A finished report.
#[derive(Debug)]
pub struct Report {
    /// The one backend to start from, if any workload has figures.
    pub default: Option<OverallDefault>,
    /// The recommendation for each workload.
    pub recommendations: Vec<Recommendation>,
    /// What the reader must know before trusting the figures: broken guarantees, capped runs,
    /// mixed machines, unreadable criterion files.
    pub warnings: Vec<String>,
    /// The charts drawn.
    pub charts: Vec<Chart>,
    /// The virtio bus's default backend, if any bus workload has figures.
    pub bus_default: Option<OverallDefault>,
    /// The recommendation for each bus workload; empty when the report has no bus section
    /// (no bus run and no criterion bus group).
    pub bus_recommendations: Vec<Recommendation>,
    blocks: Vec<Block>,
}

/// A file of the report could not be written.
#[derive(Debug)]
pub struct WriteError {
    /// The file or directory.
    pub path: PathBuf,
    /// The system's error.
    pub error: std::io::Error,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot write `{}`: {}", self.path.display(), self.error)
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// The runs without a callback cost: the ones the headline, the latency charts and every
/// workload but slow callbacks are about.
fn baseline(results: &[RunResult]) -> Vec<&RunResult> {
    results.iter().filter(|r| r.callback_cost_ns == 0).collect()
}

fn scenarios_of(runs: &[&RunResult]) -> Vec<Scenario> {
    let mut out: Vec<Scenario> = Vec::new();
    for r in runs {
        if !out.contains(&r.scenario) {
            out.push(r.scenario);
        }
    }
    out
}

/// `12 runs: 2 backends × 2 scenarios × 3 repeats`.
fn counts(runs: usize, backends: usize, scenarios: usize, repeats: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}: {} × {} × {}",
        plural(runs, "run"),
        plural(backends, "backend"),
        plural(scenarios, "scenario"),
        plural(repeats, "repeat")
    )
}

/// The most runs any backend has of any scenario.
fn repeats(runs: &[&RunResult]) -> usize {
    let mut counts = std::collections::BTreeMap::new();
    for r in runs {
        *counts.entry((&r.backend, &r.scenario)).or_insert(0usize) += 1;
    }
    counts.into_values().max().unwrap_or(0)
}

/// What the figures and the verdicts come from, when the results hold measured runs: a
/// sentence for the report's introduction, or nothing.
fn modes_phrase(results: &[RunResult]) -> Vec<Span> {
    let registry = |r: &&RunResult| r.scenario.kind() == ScenarioKind::Registry;
    let measured = results
        .iter()
        .filter(registry)
        .filter(|r| r.mode() == crate::schema::RunMode::Measured)
        .count();
    if measured == 0 {
        return Vec::new();
    }
    let verdicts = results
        .iter()
        .filter(registry)
        .filter(|r| crate::results::verdict_only(results, r))
        .count();
    doc::ticks(&format!(
        " Figures: the {measured} measured runs (latencies and counts only, so that they are the registry's rather than the harness's recording). Verdicts: {verdicts} checked runs, every call and callback recorded and checked; a backend is flagged where one broke a guarantee. The backend `{}` is the harness's floor, each plan on a raw concurrent map with no protocol: how much of a figure is the harness.",
        FLOOR
    ))
}

/// The command that replays one run.
fn run_command(r: &RunResult) -> String {
    let mut cmd = format!(
        "cargo run --release -- run --backend {} --scenario {} --seed {} --scale {}",
        r.backend, r.scenario, r.seed, r.scale
    );
    if r.callback_cost_ns > 0 {
        cmd.push_str(&format!(" --callback-cost {}ns", r.callback_cost_ns));
    }
    if r.fail_rate > 0.0 {
        cmd.push_str(&format!(" --fail-rate {}", r.fail_rate));
    }
    if r.panic_rate > 0.0 {
        cmd.push_str(&format!(" --panic-rate {}", r.panic_rate));
    }
    cmd
}

fn warnings(results: &[RunResult], criterion: &CriterionData) -> Vec<Vec<Span>> {
    let mut out = Vec::new();
    for r in results.iter().filter(|r| r.violations > 0) {
        out.push(vec![
            bold(format!("{} broke a guarantee", r.backend)),
            text(format!(
                " in {} ({} violation{}, seed {}): its figures are not comparable and it is never recommended. Replay it with ",
                r.scenario,
                r.violations,
                if r.violations == 1 { "" } else { "s" },
                r.seed
            )),
            code(run_command(r)),
        ]);
    }
    let mut capped: Vec<String> = Vec::new();
    for r in results.iter().filter(|r| r.capped) {
        let name = format!("{} in {}", r.backend, r.scenario);
        if !capped.contains(&name) {
            capped.push(name);
        }
    }
    if !capped.is_empty() {
        out.push(vec![
            bold("Capped runs: "),
            text(format!(
                "{}. Each hit its time cap before the end of its plan, so its figures cover only the part it ran; it is marked \"capped\" in the tables, and left out of the best marks and of the recommendations for that scenario.",
                capped.join(", ")
            )),
        ]);
    }
    let machines: BTreeSet<(&str, &str, usize, u64)> = results
        .iter()
        .map(|r| {
            (
                r.machine.cpu.as_str(),
                r.machine.rustc.as_str(),
                r.machine.cores,
                r.machine.memory_bytes,
            )
        })
        .collect();
    if machines.len() > 1 {
        out.push(vec![
            bold("Mixed machines: "),
            text(format!(
                "the results come from {} different machines (or compilers); comparisons across them mean little.",
                machines.len()
            )),
        ]);
    }
    if let Some((scenario, floor)) = floor_noise(results) {
        out.push(vec![
            bold("Noisy machine: "),
            text(format!(
                "the floor, each plan on a raw map with no registry, moved by {} between repeats in {scenario} ({} to {} operations a second): the machine alone moves a figure that much. A lead of that size between two backends may not hold from one run to the next, so verdicts whose margins come near it may change: read the margins in the recommendation table, and compare on a quieter machine, or with more --repeat, before acting on a close one.",
                format::ratio(floor.high / floor.low),
                format::si(floor.low),
                format::si(floor.high),
            )),
        ]);
    }
    if !criterion.benchmarks.is_empty() {
        for problem in &criterion.problems {
            out.push(vec![text(format!("criterion: {problem}"))]);
        }
    }
    if !results.is_empty() && repeats(&results.iter().collect::<Vec<_>>()) <= 1 {
        out.push(vec![
            bold("One run each: "),
            text(
                "no spread was measured, so a small lead may be noise. Rerun with --repeat 5 for medians and ranges.",
            ),
        ]);
    }
    out
}

/// Above this ratio between the floor's slowest and fastest repeat of a scenario, the report
/// warns of a noisy machine. The floor runs no registry, so what moves it is the machine and
/// the harness; on this project's shared 2-core machine it moved by up to 1.8× in three
/// full-size repeats and by 2.5× to 7× in nine quick ones, so a backend's lead of that size
/// can be noise.
const NOISY_FLOOR: f64 = 1.25;

/// The scenario whose floor throughput moved most between repeats, and its spread, if that is
/// more than [`NOISY_FLOOR`]: among the scenarios the recommendations are made from, since
/// those are the figures a reader acts on. Capped runs and scenarios with one repeat are left
/// out.
fn floor_noise(results: &[RunResult]) -> Option<(Scenario, Spread)> {
    let judged: BTreeSet<Scenario> = Workload::REGISTRY
        .iter()
        .flat_map(|w| w.scenarios().iter().copied())
        .collect();
    judged
        .into_iter()
        .filter_map(|scenario| {
            let floor = Spread::of(
                results
                    .iter()
                    .filter(|r| r.backend == FLOOR && r.scenario == scenario)
                    .filter(|r| !r.capped && r.ops_per_s > 0.0)
                    .map(|r| r.ops_per_s),
            )?;
            (floor.n >= 2 && floor.high / floor.low > NOISY_FLOOR).then_some((scenario, floor))
        })
        .max_by(|(_, a), (_, b)| (a.high / a.low).total_cmp(&(b.high / b.low)))
}

/// The best median of a column, among cells that may be marked best.
fn best_of(values: &[Option<(Spread, bool)>], higher_is_better: bool) -> Option<f64> {
    let eligible = values
        .iter()
        .flatten()
        .filter(|(_, ok)| *ok)
        .map(|(s, _)| s.median);
    if higher_is_better {
        eligible.reduce(f64::max)
    } else {
        eligible.reduce(f64::min)
    }
}

/// A run's p99.9 of `op`, if it measured it.
fn p999(r: &RunResult, op: Operation) -> Option<f64> {
    r.latency_ns
        .get(&op)
        .filter(|p| p.count > 0)
        .map(|p| p.p999 as f64)
}

/// A backend × scenario table of one figure.
fn headline_table(
    runs: &[&RunResult],
    backends: &[String],
    scenarios: &[Scenario],
    figure: fn(&RunResult) -> Option<f64>,
    write: fn(f64) -> String,
    higher_is_better: bool,
) -> Block {
    // cells[b][s]: the figure's spread, and whether it may be marked best.
    let cells: Vec<Vec<Option<(Spread, bool)>>> = backends
        .iter()
        .map(|b| {
            scenarios
                .iter()
                .map(|s| {
                    let mine: Vec<&&RunResult> = runs
                        .iter()
                        .filter(|r| &r.backend == b && r.scenario == *s)
                        .collect();
                    let spread = Spread::of(mine.iter().filter_map(|r| figure(r)))?;
                    // The floor is shown for scale, never marked best.
                    let clean = b != FLOOR && mine.iter().all(|r| !r.capped && r.violations == 0);
                    Some((spread, clean))
                })
                .collect()
        })
        .collect();
    let best: Vec<Option<f64>> = (0..scenarios.len())
        .map(|s| {
            let column: Vec<Option<(Spread, bool)>> = cells.iter().map(|row| row[s]).collect();
            best_of(&column, higher_is_better)
        })
        .collect();
    let mut rows = Vec::new();
    for (b, backend) in backends.iter().enumerate() {
        let mut row = vec![Cell::plain(backend.clone())];
        for (s, scenario) in scenarios.iter().enumerate() {
            let Some((spread, clean)) = cells[b][s] else {
                row.push(Cell::plain("—"));
                continue;
            };
            let mine: Vec<&&RunResult> = runs
                .iter()
                .filter(|r| &r.backend == backend && r.scenario == *scenario)
                .collect();
            let is_best = clean && best[s] == Some(spread.median);
            let mut body = write(spread.median);
            if is_best {
                body.push_str(" ★");
            }
            let mut spans = vec![text(body)];
            if spread.low < spread.high {
                spans.push(Span::Range(format!(
                    "{}–{}",
                    write(spread.low),
                    write(spread.high)
                )));
            }
            if mine.iter().any(|r| r.capped) {
                spans.push(text(" (capped)"));
            }
            let violations: usize = mine.iter().map(|r| r.violations).sum();
            if violations > 0 {
                spans.push(text(format!(" ⚠ {violations} violations")));
            }
            row.push(Cell {
                spans,
                best: is_best,
                warn: !clean,
            });
        }
        rows.push(row);
    }
    let mut head = vec!["backend".to_string()];
    head.extend(scenarios.iter().map(|s| s.name().to_string()));
    Block::Table {
        head,
        rows,
        prose: false,
    }
}

/// A workload's name, with its scenarios when it has its own.
fn workload_cell(r: &Recommendation) -> Cell {
    let scenarios = r.workload.scenarios();
    if scenarios.is_empty() {
        return Cell::plain(r.workload.title());
    }
    Cell {
        spans: vec![
            bold(r.workload.title()),
            text(format!(" ({})", recommend::scenario_list(scenarios))),
        ],
        ..Cell::default()
    }
}

fn recommendation_table(recs: &[Recommendation]) -> Block {
    let rows = recs
        .iter()
        .map(|r| {
            let choose = match &r.verdict {
                Verdict::Winner { backend } => Cell {
                    spans: vec![bold(backend.clone())],
                    best: true,
                    warn: false,
                },
                Verdict::Tie { leaders } => Cell::plain(format!("tie: {}", leaders.join(", "))),
                Verdict::NoData => Cell::plain("no data"),
            };
            let (runner_up, margin) = match &r.comparison {
                Some(c) => {
                    let mut words = format!(
                        "weighted lead {} (needs more than {})",
                        format::ratio(c.margin),
                        format::ratio(c.needed)
                    );
                    for m in &c.measures {
                        words.push_str("; ");
                        words.push_str(&m.describe(&c.leader, &c.runner_up));
                    }
                    (Cell::plain(c.runner_up.clone()), Cell::plain(words))
                }
                None if r.candidates.len() == 1 => (
                    Cell::plain("—"),
                    Cell::plain("the only backend with usable figures"),
                ),
                None => (Cell::plain("—"), Cell::plain("—")),
            };
            let mut basis = r.basis.to_string();
            if !r.unmeasured.is_empty() {
                let names: Vec<String> = r.unmeasured.iter().map(|m| m.name()).collect();
                basis.push_str(&format!(
                    "; not measured for every backend, so left out: {}",
                    names.join(", ")
                ));
            }
            let basis = Cell {
                spans: doc::ticks(&basis),
                ..Cell::default()
            };
            vec![workload_cell(r), choose, runner_up, margin, basis]
        })
        .collect();
    Block::Table {
        head: vec![
            "workload".into(),
            "choose".into(),
            "runner-up".into(),
            "margin per measure".into(),
            "measured by".into(),
        ],
        rows,
        prose: true,
    }
}

/// A figure of a measure, in its unit.
fn measure_figure(measure: Measure, value: f64, unit: &str) -> String {
    match measure {
        Measure::Throughput => format!("{} {unit}", format::si(value)),
        Measure::Latency(..) => format::ns(value),
    }
}

fn ranking(r: &Recommendation) -> Vec<Span> {
    let mut spans = vec![bold(format!("{}: ", r.workload.title()))];
    if r.candidates.is_empty() && r.excluded.is_empty() {
        spans.push(text("no data."));
        return spans;
    }
    let ranked: Vec<String> = r
        .candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let figures: Vec<String> = c
                .figures
                .iter()
                .map(|(m, s)| format!("{m} {}", measure_figure(*m, s.median, r.unit())))
                .collect();
            format!(
                "{}. {} {} behind the best ({})",
                i + 1,
                c.backend,
                format::ratio(c.behind),
                figures.join(", ")
            )
        })
        .collect();
    spans.push(text(ranked.join("; ")));
    if !r.excluded.is_empty() {
        let excluded: Vec<String> = r
            .excluded
            .iter()
            .map(|e| format!("{} ({})", e.backend, e.reason))
            .collect();
        spans.push(text(format!(". Left out: {}", excluded.join("; "))));
    }
    spans.push(text("."));
    spans
}

/// The weighting table of `rows`: every workload's measures, directions and weights.
fn weighting_table(table: &[Weighting]) -> Block {
    let mut rows = Vec::new();
    for row in table {
        let total: f64 = row.weights.iter().map(|w| w.weight).sum();
        for (i, w) in row.weights.iter().enumerate() {
            let workload = if i == 0 {
                Cell {
                    spans: vec![
                        bold(row.workload.title()),
                        text(format!(
                            " (prevalence {})",
                            recommend::weight(row.prevalence)
                        )),
                    ],
                    ..Cell::default()
                }
            } else {
                Cell::plain("")
            };
            rows.push(vec![
                workload,
                Cell::plain(w.measure.name()),
                Cell::plain(w.measure.direction().to_string()),
                Cell::plain(format!(
                    "{} ({:.0}%)",
                    recommend::weight(w.weight),
                    100.0 * w.weight / total
                )),
                Cell::plain(format::ratio(w.measure.band())),
            ]);
        }
    }
    Block::Table {
        head: vec![
            "workload".into(),
            "measure".into(),
            "direction".into(),
            "weight (share)".into(),
            "tie within".into(),
        ],
        rows,
        prose: true,
    }
}

/// The method in words, with its constants.
fn method() -> Vec<Span> {
    doc::ticks(&format!(
        "Per workload, each backend's median over the repeats of each measure in the table below, in each of the workload's scenarios. Two backends are compared measure by measure on the log of the ratio of their medians, so that 2× worse counts the same on throughput as on a tail; a measure counts as a tie when their ranges (lowest to highest repeat) overlap or their medians are within the measure's band, and a lead counts up to {} at most. The leader (least behind the best figures, weighted) wins when its weighted lead over every other backend is more than {} with measured spreads, or {} when some backend ran once; otherwise the backends it does not beat so are tied with it. The default is the backend that wins or ties the most workloads, each weighted by its prevalence ({}); then the one with the most outright wins. A backend that broke a guarantee is never recommended, and a capped run does not count. Slow callbacks, with no run with a callback cost and no criterion `callback_cost` group, are judged on the register and unregister tails of the nearest scenario that ran ({}).",
        format::ratio(CAP),
        format::ratio(MEASURED_MARGIN),
        format::ratio(SINGLE_RUN_MARGIN),
        recommend::prevalences(ScenarioKind::Registry),
        recommend::scenario_list(&NEAREST_TO_SLOW_CALLBACKS),
    ))
}

fn machine_items(results: &[RunResult], generated_unix_s: u64) -> Vec<Vec<Span>> {
    let mut items = Vec::new();
    let machines: Vec<&Machine> = {
        let mut seen: Vec<&Machine> = Vec::new();
        for r in results {
            if !seen.contains(&&r.machine) {
                seen.push(&r.machine);
            }
        }
        seen
    };
    if machines.is_empty() {
        items.push(vec![text("machine: unknown (no results)")]);
    }
    for m in machines {
        items.push(vec![
            bold("CPU: "),
            text(format!("{} ({} cores available)", m.cpu, m.cores)),
        ]);
        let memory = if m.memory_bytes > 0 {
            format::bytes(m.memory_bytes)
        } else {
            "unknown".into()
        };
        items.push(vec![bold("memory: "), text(memory)]);
        items.push(vec![bold("compiler: "), text(m.rustc.clone())]);
    }
    items.push(vec![
        bold("report generated: "),
        text(format::utc(generated_unix_s)),
    ]);
    items
}

/// The virtio bus's section of the report: its recommendation, headline tables and charts,
/// built from the bus runs alone, so that neither registry's figures reach the other's.
struct BusSection {
    blocks: Vec<Block>,
    charts: Vec<Chart>,
    /// The bus runs' warnings the registry's do not already give.
    warnings: Vec<Vec<Span>>,
    default: Option<OverallDefault>,
    recommendations: Vec<Recommendation>,
}

/// A run's figure for a headline table, if it measured it.
type Figure = fn(&RunResult) -> Option<f64>;

/// The bus's headline tables after throughput: a latency p99.9 each, over the scenarios that
/// measured it.
const BUS_TAILS: [(&str, Figure); 3] = [
    ("Register-device latency, p99.9 (lower is better)", |r| {
        p999(r, Operation::RegisterDevice)
    }),
    (
        "Unregister-driver latency, p99.9, for driver reloads (lower is better)",
        |r| p999(r, Operation::UnregisterDriver),
    ),
    (
        "Lookup latency, p99.9, for hot-plug (lower is better)",
        |r| p999(r, Operation::Lookup),
    ),
];

/// The criterion groups of the bus.
const BUS_GROUPS: [BenchGroup; 3] = [
    BenchGroup::BusDevice,
    BenchGroup::BusDriver,
    BenchGroup::BusProbeThreads,
];

impl BusSection {
    /// The section, or nothing when there is no bus run and no criterion bus group.
    /// `registry_backends` keep their colours; `registry_warnings` are not repeated.
    fn build(
        input: &ReportInput<'_>,
        registry_backends: &[String],
        registry_warnings: &[Vec<Span>],
    ) -> BusSection {
        let criterion = input.criterion;
        let results: Vec<RunResult> = input
            .results
            .iter()
            .filter(|r| r.scenario.kind() == ScenarioKind::Bus)
            .cloned()
            .collect();
        let mut section = BusSection {
            blocks: Vec::new(),
            charts: Vec::new(),
            warnings: Vec::new(),
            default: None,
            recommendations: Vec::new(),
        };
        if results.is_empty() && !BUS_GROUPS.iter().any(|&g| criterion.has_group(g)) {
            return section;
        }
        let runs = baseline(&results);
        let backends = recommend::backends_of(ScenarioKind::Bus, &results, criterion);
        let result_backends: Vec<String> = backends
            .iter()
            .filter(|b| results.iter().any(|r| &r.backend == *b))
            .cloned()
            .collect();
        let mut palette = registry_backends.to_vec();
        palette.extend(
            backends
                .iter()
                .filter(|b| !registry_backends.contains(b))
                .cloned(),
        );
        let colors = Colors::new(&palette);
        let recommendations = recommend::recommend_bus(&results, criterion);
        let default = recommend::overall(&recommendations);
        let shown: Vec<String> = registry_warnings
            .iter()
            .map(|w| doc::markdown(&[Block::Para(w.clone())]))
            .collect();
        section.warnings = warnings(&results, &CriterionData::default())
            .into_iter()
            .filter(|w| !shown.contains(&doc::markdown(&[Block::Para(w.clone())])))
            .collect();

        let blocks = &mut section.blocks;
        blocks.push(Block::Heading("Virtio bus".into()));
        let scenarios = scenarios_of(&runs);
        let n_repeats = repeats(&runs);
        blocks.push(Block::Para(vec![text(format!(
            "The second registry: devices bound to drivers by id table. Its figures come from the bus's own runs ({}) and criterion's bus groups, and are judged apart from the registry's.",
            counts(results.len(), result_backends.len(), scenarios.len(), n_repeats),
        ))]));
        if !section.warnings.is_empty() {
            blocks.push(Block::List(section.warnings.clone()));
        }
        blocks.push(Block::Subheading("Bus recommendations".into()));
        blocks.push(Block::Para(match &default {
            Some(d) => vec![
                bold(format!("Bus default: {}.", d.backend)),
                text(format!(" {}", d.reason())),
            ],
            None => vec![
                bold("Bus default: none"),
                text(" (no bus workload has figures)."),
            ],
        }));
        blocks.push(Block::Para(doc::ticks(&format!(
            "Computed as the registry's recommendation is (see \"How the choice is made\"), with the same margins and tie rules, on the bus workloads' own rows of the weighting table below; the bus default weighs them by their prevalence ({}).",
            recommend::prevalences(ScenarioKind::Bus)
        ))));
        blocks.push(recommendation_table(&recommendations));
        blocks.push(Block::List(recommendations.iter().map(ranking).collect()));
        blocks.push(weighting_table(&BUS_WEIGHTING));

        blocks.push(Block::Subheading(
            "Bus throughput (operations a second, higher is better)".into(),
        ));
        if runs.is_empty() {
            blocks.push(Block::Missing("no bus stress runs in the results".into()));
        } else {
            blocks.push(headline_table(
                &runs,
                &result_backends,
                &scenarios,
                |r| Some(r.ops_per_s),
                format::si,
                true,
            ));
            for (title, figure) in BUS_TAILS {
                let measured: Vec<Scenario> = scenarios
                    .iter()
                    .copied()
                    .filter(|s| runs.iter().any(|r| r.scenario == *s && figure(r).is_some()))
                    .collect();
                if !measured.is_empty() {
                    blocks.push(Block::Subheading(title.into()));
                    blocks.push(headline_table(
                        &runs,
                        &result_backends,
                        &measured,
                        figure,
                        format::ns,
                        false,
                    ));
                }
            }
        }

        // The cost curves come from criterion's bus benches alone: without them, one sentence
        // says how to get them rather than two empty charts.
        let bus_criterion = criterion.has_group(BenchGroup::BusDevice)
            || criterion.has_group(BenchGroup::BusDriver);
        if !bus_criterion {
            section.blocks.push(Block::Para(vec![
                text("The bus's cost curves (device register+unregister against live devices, driver register+unregister against bound devices) come from criterion: "),
                code("cargo bench -p bypass-benches --bench bus"),
                text(" adds them to this report."),
            ]));
        }
        let mut chart = |title: &str, chart: Result<Chart, String>| {
            section.blocks.push(Block::Subheading(title.into()));
            match chart {
                Ok(chart) => {
                    section.charts.push(chart.clone());
                    section.blocks.push(Block::Chart(chart));
                }
                Err(why) => section.blocks.push(Block::Missing(why)),
            }
        };
        if bus_criterion {
            chart(
                "Bus: device register+unregister cost against live devices",
                charts::device_population(criterion, &colors, &backends),
            );
            chart(
                "Bus: driver register+unregister cost against bound devices",
                charts::driver_population(criterion, &colors, &backends),
            );
        }
        for latency in charts::latency(&results, &colors, &result_backends) {
            let title = format!("Latency: {}", latency.title.split(':').next().unwrap_or(""));
            chart(&title, Ok(latency));
        }
        section.default = default;
        section.recommendations = recommendations;
        section
    }
}

impl Report {
    /// Computes everything the report says from `input`.
    pub fn build(input: &ReportInput<'_>) -> Report {
        Report::build_with_sweep(input, None)
    }

    /// [`Report::build`], with the sweep `bypass compare` writes next to its results: the
    /// charts of cost against live tokens and throughput against threads draw it where
    /// criterion has no figures.
    pub fn build_with_sweep(input: &ReportInput<'_>, sweep: Option<&Sweep>) -> Report {
        // The registry's sections only: bus runs get a section of their own. Its figures are
        // the measured runs' where there are any, the checked runs giving the verdicts.
        let registry: Vec<RunResult> = crate::results::figure_runs(input.results)
            .into_iter()
            .filter(|r| r.scenario.kind() == ScenarioKind::Registry)
            .collect();
        let results = &registry[..];
        let criterion = input.criterion;
        let runs = baseline(results);
        let backends = recommend::backends(results, criterion);
        let result_backends: Vec<String> = backends
            .iter()
            .filter(|b| results.iter().any(|r| &r.backend == *b))
            .cloned()
            .collect();
        let scenarios = scenarios_of(&runs);
        let colors = Colors::new(&backends);
        let recommendations = recommend::recommend(results, criterion);
        let warning_spans = warnings(results, criterion);

        let default = recommend::overall(&recommendations);
        let mut blocks = vec![Block::Title("bypass report".into())];
        blocks.push(Block::Para(match &default {
            Some(d) => vec![
                bold(format!("Default backend: {}.", d.backend)),
                text(format!(" {}", d.reason())),
            ],
            None => vec![
                bold("Default backend: none"),
                text(" (no workload has figures)."),
            ],
        }));
        let n_repeats = repeats(&runs);
        let mut intro = doc::ticks(&format!(
            "Generated {} from {} ({})",
            format::utc(input.generated_unix_s),
            input.results_source,
            counts(
                results.len(),
                result_backends.len(),
                scenarios.len(),
                n_repeats
            ),
        ));
        if criterion.benchmarks.is_empty() {
            intro.extend(doc::ticks(&format!(
                "; no criterion data ({}).",
                criterion
                    .problems
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "none read".into())
            )));
        } else {
            intro.extend(doc::ticks(&format!(
                " and {} criterion benchmarks under `{}`.",
                criterion.benchmarks.len(),
                criterion.dir.display()
            )));
        }
        intro.extend(modes_phrase(input.results));
        blocks.push(Block::Para(intro));

        if !warning_spans.is_empty() {
            blocks.push(Block::Heading("Warnings".into()));
            blocks.push(Block::List(warning_spans.clone()));
        }

        blocks.push(Block::Heading("Recommendations".into()));
        blocks.push(Block::Para(vec![text(
            "Computed from the figures below, throughput and tail latency together: per workload the backend to choose, or the backends tied for it, and the leader against the runner-up on each measure (\"tie\" where the repeats cannot tell them apart). How the choice is made, and the weight of each measure, follow the ranking.",
        )]));
        blocks.push(recommendation_table(&recommendations));
        blocks.push(Block::List(recommendations.iter().map(ranking).collect()));
        blocks.push(Block::Subheading("How the choice is made".into()));
        blocks.push(Block::Para(method()));
        blocks.push(weighting_table(&WEIGHTING));

        blocks.push(Block::Heading("Headline".into()));
        if runs.is_empty() {
            blocks.push(Block::Missing("no stress runs in the results".into()));
        } else {
            blocks.push(Block::Para(vec![text(
                "Each backend × scenario: the median over the repeats, with the lowest and highest run in parentheses when there are several. ★ marks the best of each column among runs that were neither capped nor broke a guarantee; \"capped\" marks runs stopped by their time cap, ⚠ runs that broke a guarantee.",
            )]));
            blocks.push(Block::Subheading(
                "Throughput (operations a second, higher is better)".into(),
            ));
            blocks.push(headline_table(
                &runs,
                &result_backends,
                &scenarios,
                |r| Some(r.ops_per_s),
                format::si,
                true,
            ));
            blocks.push(Block::Subheading(
                "Register latency, p99.9 (lower is better)".into(),
            ));
            blocks.push(headline_table(
                &runs,
                &result_backends,
                &scenarios,
                |r| p999(r, Operation::Register),
                format::ns,
                false,
            ));
        }

        blocks.push(Block::Heading("Charts".into()));
        let mut charts = Vec::new();
        let mut chart_block =
            |title: &str, chart: Result<Chart, String>, blocks: &mut Vec<Block>| {
                blocks.push(Block::Subheading(title.into()));
                match chart {
                    Ok(chart) => {
                        charts.push(chart.clone());
                        blocks.push(Block::Chart(chart));
                    }
                    Err(why) => blocks.push(Block::Missing(why)),
                }
            };
        chart_block(
            "Throughput against threads",
            charts::throughput_threads(results, criterion, sweep, &colors, &backends),
            &mut blocks,
        );
        chart_block(
            "Connect+disconnect cost against live tokens",
            charts::cost_population(criterion, sweep, &colors, &backends),
            &mut blocks,
        );
        chart_block(
            "Lookup throughput under churn",
            charts::lookup(results, criterion, &colors, &backends),
            &mut blocks,
        );
        let latency = charts::latency(results, &colors, &result_backends);
        if latency.is_empty() {
            chart_block(
                "Latency percentiles",
                Err("no stress runs with latency figures".into()),
                &mut blocks,
            );
        }
        for chart in latency {
            let title = format!("Latency: {}", chart.title.split(':').next().unwrap_or(""));
            chart_block(&title, Ok(chart), &mut blocks);
        }

        let bus = BusSection::build(input, &backends, &warning_spans);
        blocks.extend(bus.blocks);
        charts.extend(bus.charts);
        let mut warning_spans = warning_spans;
        warning_spans.extend(bus.warnings);

        blocks.push(Block::Heading("Machine and reproduction".into()));
        blocks.push(Block::List(machine_items(results, input.generated_unix_s)));
        if input.commands.is_empty() {
            blocks.push(Block::Missing(
                "the commands that made these results are not known".into(),
            ));
        } else {
            blocks.push(Block::Para(vec![text(
                "To reproduce this report, from the repository root:",
            )]));
            blocks.push(Block::Commands(input.commands.clone()));
        }

        Report {
            default,
            recommendations,
            warnings: warning_spans
                .iter()
                .map(|spans| {
                    doc::markdown(&[Block::Para(spans.clone())])
                        .trim()
                        .to_string()
                })
                .collect(),
            charts,
            bus_default: bus.default,
            bus_recommendations: bus.recommendations,
            blocks,
        }
    }

    /// The verdicts for a terminal, as (label, text): the default and its reason first, then
    /// each workload's summary; then, when the report has a bus section, the bus's default and
    /// each bus workload's summary.
    pub fn headline(&self) -> Vec<(String, String)> {
        let default = match &self.default {
            Some(d) => d.reason(),
            None => "none (no workload has figures)".into(),
        };
        let mut lines = vec![("default".to_string(), default)];
        for rec in &self.recommendations {
            lines.push((rec.workload.title().to_string(), rec.summary()));
        }
        if !self.bus_recommendations.is_empty() {
            let default = match &self.bus_default {
                Some(d) => d.reason(),
                None => "none (no bus workload has figures)".into(),
            };
            lines.push(("bus default".to_string(), default));
            for rec in &self.bus_recommendations {
                lines.push((format!("bus: {}", rec.workload.title()), rec.summary()));
            }
        }
        lines
    }

    /// The report in Markdown; charts are linked as the SVG files next to it.
    pub fn markdown(&self) -> String {
        doc::markdown(&self.blocks)
    }

    /// The report as one self-contained HTML page: the same content, the charts inline.
    pub fn html(&self) -> String {
        doc::html(&self.blocks)
    }

    /// Writes `report.md`, `report.html` and the charts' SVG files into `dir` (created if
    /// needed), and returns the paths written, the HTML first.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
        std::fs::create_dir_all(dir).map_err(|error| WriteError {
            path: dir.to_path_buf(),
            error,
        })?;
        let mut files = vec![
            (dir.join("report.html"), self.html()),
            (dir.join("report.md"), self.markdown()),
        ];
        for chart in &self.charts {
            files.push((dir.join(&chart.file), chart.svg.clone()));
        }
        let mut written = Vec::new();
        for (path, body) in files {
            std::fs::write(&path, body).map_err(|error| WriteError {
                path: path.clone(),
                error,
            })?;
            written.push(path);
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::criterion::tests::temp_dir;
    use crate::recommend::tests::{bus_repeats, repeats};

    fn synthetic() -> Vec<RunResult> {
        let mut results = Vec::new();
        for scenario in [
            Scenario::IrqfdFlood,
            Scenario::BootStorm,
            Scenario::ServerlessChurn,
            Scenario::DeliveryLookup,
        ] {
            repeats(
                &mut results,
                scenario,
                &[("mutex-list", 1e3), ("mutex-map", 5e4), ("lockfree", 2e5)],
                0.05,
            );
        }
        for r in &mut results {
            if r.backend == "mutex-list" && r.scenario == Scenario::IrqfdFlood {
                r.capped = true;
            }
            if r.backend == "mutex-map" && r.scenario == Scenario::ServerlessChurn && r.seed == 2 {
                r.violations = 3;
            }
        }
        results
    }

    fn build(results: &[RunResult]) -> Report {
        Report::build(&ReportInput {
            results,
            results_source: "results.json".into(),
            criterion: &CriterionData::read(Path::new("/nonexistent/criterion")),
            commands: vec!["cargo run --release -- compare --repeat 3 --seed 1".into()],
            generated_unix_s: 1_751_292_300,
        })
    }

    #[test]
    fn flags_capped_runs_and_violations() {
        let report = build(&synthetic());
        let md = report.markdown();
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("mutex-map broke a guarantee"))
        );
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("mutex-list in irqfd-flood"))
        );
        assert!(
            md.contains("--backend mutex-map --scenario serverless-churn --seed 2"),
            "{md}"
        );
        assert!(md.contains("(capped)"));
        assert!(md.contains("⚠ 3 violations"));
        // lockfree is best everywhere, and marked so.
        assert!(
            md.contains("| lockfree | **200 k ★ (190 k–210 k)** |"),
            "{md}"
        );
    }

    /// The floor runs no registry: when its repeats move by more than 1.25×, the report says
    /// the machine is noisy, naming the scenario where it moved most; steady repeats, a single
    /// run or a capped one give no warning.
    #[test]
    fn a_floor_that_moves_between_repeats_warns_of_a_noisy_machine() {
        let noisy = |results: &[RunResult]| {
            build(results)
                .warnings
                .into_iter()
                .find(|w| w.contains("Noisy machine"))
        };
        let with_floor = |flood: f64, churn: f64| {
            let mut results = synthetic();
            repeats(&mut results, Scenario::IrqfdFlood, &[(FLOOR, 3e5)], flood);
            repeats(
                &mut results,
                Scenario::ServerlessChurn,
                &[(FLOOR, 3e5)],
                churn,
            );
            results
        };
        // 1.3/0.7 in churn against 1.1/0.9 in the flood: churn is named, with its range.
        let warning = noisy(&with_floor(0.1, 0.3)).expect("a noisy floor is flagged");
        assert!(
            warning.contains("by 1.86× between repeats in serverless-churn"),
            "{warning}"
        );
        assert!(
            warning.contains("(210 k to 390 k operations a second)"),
            "{warning}"
        );
        // 1.05/0.95 = 1.11×: steady.
        assert_eq!(noisy(&with_floor(0.05, 0.05)), None);
        assert_eq!(noisy(&synthetic()), None, "no floor, no warning");
        // One repeat has no spread; a capped repeat is not a figure.
        let mut results = with_floor(0.05, 0.3);
        results.retain(|r| {
            r.backend != FLOOR || r.scenario != Scenario::ServerlessChurn || r.seed == 1
        });
        assert_eq!(noisy(&results), None, "one repeat");
        let mut results = with_floor(0.05, 0.3);
        for r in &mut results {
            r.capped |=
                r.backend == FLOOR && r.scenario == Scenario::ServerlessChurn && r.seed == 3;
        }
        let warning = noisy(&results).expect("the two uncapped repeats still differ");
        assert!(warning.contains("by 1.43×"), "{warning}");
    }

    #[test]
    fn measured_figures_checked_verdicts_the_floor_never_chosen_and_the_sweep_charted() {
        let mut results = synthetic();
        for r in &mut results {
            r.violations = 0;
            r.capped = false;
            r.details.mode = Some(crate::schema::RunMode::Measured);
        }
        let scenarios = scenarios_of(&results.iter().collect::<Vec<_>>());
        for &scenario in &scenarios {
            // The floor, fastest everywhere, and a checked run of each backend.
            let mut floor = crate::recommend::tests::run(FLOOR, scenario, 1, 9e6);
            floor.details.mode = Some(crate::schema::RunMode::Measured);
            results.push(floor);
            for backend in ["mutex-list", "mutex-map", "lockfree"] {
                let mut checked = crate::recommend::tests::run(backend, scenario, 1, 777.0);
                checked.details.mode = Some(crate::schema::RunMode::Checked);
                checked.violations =
                    usize::from(backend == "mutex-map" && scenario == Scenario::ServerlessChurn)
                        * 3;
                results.push(checked);
            }
        }
        let backends: Vec<String> = ["mutex-list", "mutex-map", "lockfree"]
            .map(String::from)
            .to_vec();
        let sweep = crate::charts::tests::sweep_fixture(&backends);
        let report = Report::build_with_sweep(
            &ReportInput {
                results: &results,
                results_source: "results.json".into(),
                criterion: &CriterionData::read(Path::new("/nonexistent/criterion")),
                commands: vec!["cargo run --release -- compare --quick".into()],
                generated_unix_s: 0,
            },
            Some(&sweep),
        );
        let md = report.markdown();
        assert!(
            !md.contains("777"),
            "a clean checked run's figures are not shown: {md}"
        );
        assert!(
            md.contains("⚠ 3 violations"),
            "a checked run's verdict is: {md}"
        );
        assert!(md.contains("floor"), "the floor is shown for scale: {md}");
        assert!(md.contains("the harness's floor"), "{md}");
        for r in &report.recommendations {
            assert!(
                !format!("{:?}", r.verdict).contains("floor"),
                "{:?}",
                r.verdict
            );
        }
        assert_ne!(report.default.as_ref().unwrap().backend, FLOOR);
        assert!(!md.contains("No data"), "{md}");
        let files: Vec<&str> = report.charts.iter().map(|c| c.file.as_str()).collect();
        assert!(
            files.contains(&"cost-population.svg") && files.contains(&"throughput-threads.svg")
        );
    }

    #[test]
    fn every_section_is_there_without_criterion() {
        let mut results = synthetic();
        for r in &mut results {
            r.violations = 0;
        }
        let report = build(&results);
        let md = report.markdown();
        for section in [
            "## Recommendations",
            "## Headline",
            "### Throughput",
            "### Register latency, p99.9",
            "## Charts",
            "## Machine and reproduction",
            "Synthetic CPU (2 cores available)",
            "8.0 GiB",
            "rustc 1.95.0",
            "2025-06-30 14:05 UTC",
            "compare --repeat 3 --seed 1",
            "no criterion data",
            "No data: no criterion `cycle_population` data",
        ] {
            assert!(md.contains(section), "missing {section:?} in\n{md}");
        }
        let boot = &report.recommendations[0];
        assert!(matches!(&boot.verdict, Verdict::Winner { backend } if backend == "lockfree"));
        assert!(md.contains("| **Boot storms** (boot-storm, restore-storm, irqfd-flood) | **lockfree** | mutex-map | weighted lead "), "{md}");
        assert!(
            md.contains("throughput: lockfree 4.00×; register p99.9: lockfree 4.00×"),
            "{md}"
        );
        // The default comes first, with its reason.
        let default = md
            .find("**Default backend: lockfree.**")
            .expect("the default");
        assert!(default < md.find("Generated").unwrap(), "{md}");
        let (label, reason) = &report.headline()[0];
        assert_eq!(label, "default");
        assert!(reason.starts_with("lockfree wins boot storms"), "{reason}");
        // The charts that results alone allow: lookup from delivery-lookup, and latencies.
        let files: Vec<&str> = report.charts.iter().map(|c| c.file.as_str()).collect();
        assert_eq!(
            files,
            [
                "lookup.svg",
                "latency-irqfd-flood.svg",
                "latency-boot-storm.svg",
                "latency-serverless-churn.svg",
                "latency-delivery-lookup.svg"
            ]
        );
        let html = report.html();
        assert_eq!(html.matches("<svg").count(), 5);
        assert!(html.contains("<h2>Recommendations</h2>"));
    }

    #[test]
    fn the_weighting_table_is_printed() {
        let md = build(&synthetic()).markdown();
        assert!(md.contains("### How the choice is made"), "{md}");
        assert!(
            md.contains("| workload | measure | direction | weight (share) | tie within |"),
            "{md}"
        );
        // Every row of the table, as the report prints it.
        for row in &WEIGHTING {
            let total: f64 = row.weights.iter().map(|w| w.weight).sum();
            for w in row.weights {
                let line = format!(
                    "| {} | {} | {} ({:.0}%) | {} |",
                    w.measure.name(),
                    w.measure.direction(),
                    recommend::weight(w.weight),
                    100.0 * w.weight / total,
                    format::ratio(w.measure.band())
                );
                assert!(md.contains(&line), "missing {line} in\n{md}");
            }
        }
        assert!(md.contains("| **Read-heavy delivery** (prevalence 3) | throughput | higher is better | 2 (36%) | 1.05× |"), "{md}");
        assert!(
            md.contains("| lookup p99.9 | lower is better | 2 (36%) | 2.00× |"),
            "{md}"
        );
    }

    #[test]
    fn writes_the_files() {
        let dir = temp_dir("report-write");
        let report = build(&synthetic());
        let written = report.write(&dir.join("out")).unwrap();
        assert!(written[0].ends_with("report.html"));
        for name in [
            "report.html",
            "report.md",
            "lookup.svg",
            "latency-boot-storm.svg",
        ] {
            assert!(dir.join("out").join(name).is_file(), "{name}");
        }
        // A file where the directory should be: an error, not a panic.
        std::fs::write(dir.join("file"), "x").unwrap();
        let err = report.write(&dir.join("file")).unwrap_err();
        assert!(err.to_string().contains("cannot write"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bus_runs_get_their_own_section_and_no_registry_table() {
        let mut results = synthetic();
        for r in &mut results {
            r.violations = 0;
            r.capped = false;
        }
        let registry_only = build(&results).markdown();
        assert!(!registry_only.contains("Virtio bus"), "{registry_only}");
        for scenario in [Scenario::VirtioBoot, Scenario::VirtioHotplug] {
            bus_repeats(
                &mut results,
                scenario,
                &[("mutex-map", 9e5), ("lockfree", 1e4)],
                0.05,
            );
        }
        for r in results
            .iter_mut()
            .filter(|r| r.scenario == Scenario::VirtioHotplug)
        {
            let p = r.latency_ns[&Operation::RegisterDevice];
            r.latency_ns.insert(Operation::Lookup, p);
        }
        let report = build(&results);
        let md = report.markdown();
        let bus_at = md.find("## Virtio bus").expect("a bus section");
        let (registry, bus) = md.split_at(bus_at);
        // The registry's part is what it was without the bus runs.
        let unchanged = &registry_only[..registry_only.find("## Machine").unwrap()];
        assert_eq!(registry, unchanged);
        assert!(!registry.contains("virtio-"), "{registry}");
        assert!(!bus.contains("boot-storm |"), "{bus}");
        assert!(bus.contains("**Bus default: mutex-map.**"), "{bus}");
        assert!(
            bus.contains("| backend | virtio-boot | virtio-hotplug |"),
            "{bus}"
        );
        assert!(bus.contains("### Register-device latency, p99.9"), "{bus}");
        // Lookups were measured in virtio-hotplug only, and driver reloads not at all.
        assert!(bus.contains("### Lookup latency, p99.9, for hot-plug (lower is better)\n\n| backend | virtio-hotplug |"), "{bus}");
        assert!(!bus.contains("Unregister-driver latency"), "{bus}");
        for row in &BUS_WEIGHTING {
            assert!(bus.contains(&format!("**{}** (prevalence", row.workload.title())));
        }
        assert!(
            bus.contains("The bus's cost curves") && !bus.contains("No data"),
            "{bus}"
        );
        let files: Vec<&str> = report.charts.iter().map(|c| c.file.as_str()).collect();
        assert!(files.ends_with(&["latency-virtio-boot.svg", "latency-virtio-hotplug.svg"]));
        // The terminal: the registry's lines first, then the bus's.
        let labels: Vec<String> = report.headline().into_iter().map(|(l, _)| l).collect();
        assert_eq!(labels[0], "default");
        assert_eq!(
            labels[5..],
            [
                "bus default",
                "bus: VM boots",
                "bus: Driver upgrades",
                "bus: Hot-plug with lookups"
            ]
        );
        assert!(
            report.headline()[5]
                .1
                .starts_with("mutex-map wins VM boots and hot-plug with lookups")
        );
        assert_eq!(report.default.as_ref().unwrap().backend, "lockfree");
    }

    #[test]
    fn an_empty_results_file_still_reports() {
        let report = build(&[]);
        let md = report.markdown();
        assert!(md.contains("No data: no stress runs"));
        assert!(md.contains("**Default backend: none**"), "{md}");
        assert!(
            report
                .recommendations
                .iter()
                .all(|r| r.verdict == Verdict::NoData)
        );
    }
}
