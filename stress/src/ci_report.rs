//! What `bypass ci --json` and `--junit` write: the runs the ci suite made, as JSON for
//! scripts and as JUnit XML for CI systems.

use std::fmt::Write as _;
use std::time::Duration;

use bypass_reports::RunResult;
use bypass_stress::Violation;
use bypass_stress::runner::RunOutput;
use bypass_stress::scenario::Scenario;
use serde::Serialize;

/// The runs of one `bypass ci`.
#[derive(Debug)]
pub(crate) struct CiSuite<'a> {
    /// The seed of the suite (each run's own seed is in its result).
    pub(crate) seed: u64,
    /// The time budget.
    pub(crate) budget: Duration,
    /// How long the suite took.
    pub(crate) elapsed: Duration,
    /// Every run, in the order it was made.
    pub(crate) runs: &'a [RunOutput],
}

/// `bypass ci --json`'s document.
#[derive(Debug, Serialize)]
pub(crate) struct CiJson<'a> {
    seed: u64,
    budget_s: f64,
    elapsed_s: f64,
    /// Runs that broke a guarantee.
    failed: usize,
    runs: Vec<CiRunJson<'a>>,
}

#[derive(Debug, Serialize)]
struct CiRunJson<'a> {
    result: &'a RunResult,
    violations: &'a [Violation],
}

impl CiSuite<'_> {
    fn failed(&self) -> usize {
        self.runs
            .iter()
            .filter(|o| !o.violations.is_empty())
            .count()
    }

    /// The document `--json` writes: the suite's settings, and each run's figures and
    /// violations.
    pub(crate) fn json(&self) -> CiJson<'_> {
        CiJson {
            seed: self.seed,
            budget_s: self.budget.as_secs_f64(),
            elapsed_s: self.elapsed.as_secs_f64(),
            failed: self.failed(),
            runs: self
                .runs
                .iter()
                .map(|o| CiRunJson {
                    result: &o.result,
                    violations: &o.violations,
                })
                .collect(),
        }
    }

    /// The JUnit XML `--junit` writes: one test case per backend × scenario (all its runs,
    /// whatever their seeds), failed if any run broke a guarantee, with each violation, its
    /// seed, the command that reproduces it and the replay trace in the failure's text.
    pub(crate) fn junit(&self) -> String {
        let mut cases: Vec<(&str, Scenario, Vec<&RunOutput>)> = Vec::new();
        for run in self.runs {
            let (backend, scenario) = (run.result.backend.as_str(), run.result.scenario);
            match cases
                .iter_mut()
                .find(|(b, s, _)| *b == backend && *s == scenario)
            {
                Some((_, _, runs)) => runs.push(run),
                None => cases.push((backend, scenario, vec![run])),
            }
        }
        let failed_cases = cases
            .iter()
            .filter(|(_, _, runs)| runs.iter().any(|r| !r.violations.is_empty()))
            .count();
        let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let header = format!(
            "tests=\"{}\" failures=\"{failed_cases}\" errors=\"0\" time=\"{:.3}\"",
            cases.len(),
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(xml, "<testsuites name=\"bypass ci\" {header}>");
        let _ = writeln!(xml, "  <testsuite name=\"bypass ci\" {header}>");
        let _ = writeln!(
            xml,
            "    <properties><property name=\"seed\" value=\"{}\"/><property name=\"budget_s\" value=\"{:.0}\"/></properties>",
            self.seed,
            self.budget.as_secs_f64()
        );
        for (backend, scenario, runs) in &cases {
            let time: f64 = runs.iter().map(|r| r.result.elapsed_s).sum();
            let _ = writeln!(
                xml,
                "    <testcase classname=\"bypass.ci.{}\" name=\"{}\" time=\"{time:.3}\">",
                escape(backend),
                scenario
            );
            let broken: Vec<&&RunOutput> =
                runs.iter().filter(|r| !r.violations.is_empty()).collect();
            if !broken.is_empty() {
                let count: usize = broken.iter().map(|r| r.violations.len()).sum();
                let seeds: Vec<String> = broken.iter().map(|r| r.result.seed.to_string()).collect();
                let mut text = String::new();
                for run in &broken {
                    let _ = writeln!(
                        text,
                        "seed {}: {} violation(s); reproduce with `{}`",
                        run.result.seed,
                        run.violations.len(),
                        reproduce(&run.result)
                    );
                    for v in &run.violations {
                        let _ = writeln!(text, "- {v}");
                    }
                }
                let _ = writeln!(
                    xml,
                    "      <failure type=\"violation\" message=\"{count} violation(s), seed {}\">{}</failure>",
                    seeds.join(", "),
                    escape(&text)
                );
            }
            let mut out = String::new();
            for run in runs {
                let r = &run.result;
                let _ = writeln!(
                    out,
                    "seed {}: {} threads, {} operations in {:.2} s{}",
                    r.seed,
                    r.threads,
                    r.ops,
                    r.elapsed_s,
                    if r.capped {
                        format!(", capped ({} operations skipped)", r.skipped_ops)
                    } else {
                        String::new()
                    }
                );
            }
            let _ = writeln!(xml, "      <system-out>{}</system-out>", escape(&out));
            xml.push_str("    </testcase>\n");
        }
        xml.push_str("  </testsuite>\n</testsuites>\n");
        xml
    }
}

/// The `bypass run` command that repeats `r`.
fn reproduce(r: &RunResult) -> String {
    format!(
        "bypass run --backend {} --scenario {} --seed {} --scale {} --fail-rate {} --panic-rate {}",
        r.backend, r.scenario, r.seed, r.scale, r.fail_rate, r.panic_rate
    )
}

/// `text` as XML character data or attribute value: markup escaped, and characters XML 1.0
/// cannot hold replaced.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use bypass_reports::schema::ViolationKind;

    fn output(
        backend: &str,
        scenario: Scenario,
        seed: u64,
        violations: Vec<Violation>,
    ) -> RunOutput {
        let mut result: RunResult = serde_json::from_value(serde_json::json!({
            "backend": backend, "scenario": scenario, "ops_per_s": 1.0
        }))
        .unwrap();
        result.seed = seed;
        result.scale = 0.1;
        result.violations = violations.len();
        RunOutput {
            result,
            violations,
            tokens: 0,
        }
    }

    /// A violation is a failure of its backend x scenario with the seed, the command that
    /// repeats it and the replay trace; runs of one pair with other seeds join its case.
    #[test]
    fn junit_has_one_case_per_pair_and_failures_with_seed_and_trace() {
        let broken = Violation {
            kind: ViolationKind::Exclusion,
            token: Some(7),
            message: "callbacks of two calls <interleaved>".into(),
            trace: Some("register producer 7\nregister consumer 7\n".into()),
        };
        let runs = [
            output("sharded", Scenario::BootStorm, 41, vec![]),
            output("sharded", Scenario::IrqfdFlood, 41, vec![]),
            output("sharded", Scenario::BootStorm, 42, vec![broken]),
        ];
        let suite = CiSuite {
            seed: 41,
            budget: Duration::from_secs(60),
            elapsed: Duration::from_secs(3),
            runs: &runs,
        };
        let xml = suite.junit();
        assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        let failure = &xml[xml.find("<failure").expect("a failure")..];
        let failure = &failure[..failure.find("</failure>").unwrap()];
        assert!(failure.contains("seed 42"), "{failure}");
        assert!(
            failure.contains("bypass run --backend sharded --scenario boot-storm --seed 42"),
            "{failure}"
        );
        assert!(failure.contains("    register consumer 7"), "{failure}");
        assert!(failure.contains("&lt;interleaved&gt;"), "{failure}");
        let json = serde_json::to_value(suite.json()).unwrap();
        assert_eq!(json["failed"], 1);
        assert_eq!(json["runs"][2]["violations"][0]["token"], 7);
    }

    #[test]
    fn escapes_markup_and_control_characters() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>\u{1}\n"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{FFFD}\n"
        );
    }
}
