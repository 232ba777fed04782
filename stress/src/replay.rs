//! `bypass replay`: run a trace and print what ran.
//!
//! A trace may mix the lines of the two registries: bypass lines (`register producer 7`) and
//! bus lines (`register driver net id 1:*`, `register device 5 id 1:1`, `rescan`). Each kind
//! runs on its own registry of the backend replayed (its `Registry` and its `Bus`), and is
//! compared with its own model.
//!
//! The trace is streamed, never held: it is read twice, line by line, each line at most
//! [`trace::MAX_LINE_BYTES`] long. The first pass checks every line, so that a malformed trace
//! runs nothing; the second runs each line on every backend and the model as it is read,
//! prints it and compares it. Memory is the registries' state, whatever the trace's size.
//! Input that cannot be read twice (standard input, a pipe, a device) is copied during the
//! first pass into an unlinked temporary file.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal, Read, Seek, Write};
use std::process::ExitCode;
use std::sync::Arc;

use bypass_registry::Registry;
use bypass_registry::bus::model::BusModel;
use bypass_registry::bus::{self, Bus};
use bypass_registry::model::Model;
use bypass_registry::op;
use bypass_registry::trace::{self, MAX_LINE_BYTES, Replayer};
use bypass_strategies::Backend;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{BackendChoice, ReplayArgs};
use crate::commands::bad_input;

/// One operation of a trace: of the IRQ bypass registry, or of the virtio bus.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Bypass(op::Op),
    Bus(bus::op::Op),
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Bypass(op) => op.fmt(f),
            Op::Bus(op) => op.fmt(f),
        }
    }
}

/// One replayed operation, of either registry.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    Bypass(op::Step),
    Bus(bus::op::Step),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Bypass(step) => step.fmt(f),
            Step::Bus(step) => step.fmt(f),
        }
    }
}

/// Whether a line (its comment removed) is a bus line: `rescan`, or `register`/`unregister`
/// followed by `driver` or `device`. Every other line is read as a bypass line.
fn is_bus_line(code: &str) -> bool {
    let mut words = code.split_whitespace();
    matches!(
        (words.next(), words.next()),
        (Some("rescan"), _) | (Some("register" | "unregister"), Some("driver" | "device"))
    )
}

/// Parses line `number` of a mixed trace: `None` for a blank or comment-only line.
fn parse_line(number: usize, text: &str) -> Result<Option<Op>, String> {
    let malformed = |e: trace::ParseError| format!("malformed trace: {e}");
    // The bypass parser knows the limits (length, a byte-order mark on line 1); it also reads
    // bus lines' comments the same way.
    let code = match number {
        1 => text.strip_prefix('\u{feff}').unwrap_or(text),
        _ => text,
    };
    let code = code.split_once('#').map_or(code, |(code, _)| code);
    if text.len() <= MAX_LINE_BYTES && is_bus_line(code) {
        return bus::trace::parse_line(code)
            .map(|op| op.map(Op::Bus))
            .map_err(|message| {
                malformed(trace::ParseError {
                    line: number,
                    message,
                })
            });
    }
    trace::parse_line(number, text)
        .map(|op| op.map(Op::Bypass))
        .map_err(malformed)
}

/// A trace read line by line, each line bounded, with its number and the bytes read so far.
struct Lines<R> {
    reader: R,
    number: usize,
    bytes: u64,
    line: Vec<u8>,
}

impl<R: BufRead> Lines<R> {
    fn new(reader: R) -> Lines<R> {
        Lines {
            reader,
            number: 0,
            bytes: 0,
            line: Vec::with_capacity(128),
        }
    }

    /// The next line without its line ending, and its number (from 1); `None` at the end.
    /// A line longer than [`MAX_LINE_BYTES`], a NUL byte (binary input) or text that is not
    /// UTF-8 is an error naming the line.
    fn next_line(&mut self) -> Result<Option<(usize, &str)>, String> {
        self.line.clear();
        let number = self.number + 1;
        let mut read_any = false;
        loop {
            let chunk = self
                .reader
                .fill_buf()
                .map_err(|e| format!("cannot read the trace at line {number}: {e}"))?;
            if chunk.is_empty() {
                if !read_any {
                    return Ok(None);
                }
                break;
            }
            read_any = true;
            let newline = chunk.iter().position(|&b| b == b'\n');
            let take = newline.unwrap_or(chunk.len());
            // One byte more than the limit for a `\r` before the `\n`.
            let room = MAX_LINE_BYTES + 1 - self.line.len();
            if chunk[..take.min(room + 1)].contains(&0) {
                return Err(format!(
                    "line {number} holds a NUL byte: the input is binary, not a text trace"
                ));
            }
            if take > room {
                return Err(format!(
                    "malformed trace: line {number}: the line is longer than {MAX_LINE_BYTES} bytes: not a trace line"
                ));
            }
            self.line.extend_from_slice(&chunk[..take]);
            let consumed = take + usize::from(newline.is_some());
            self.reader.consume(consumed);
            self.bytes += consumed as u64;
            if newline.is_some() {
                break;
            }
        }
        self.number = number;
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        let text = std::str::from_utf8(&self.line).map_err(|_| {
            format!("line {number} is not UTF-8 text: the input is binary, not a text trace")
        })?;
        Ok(Some((number, text)))
    }

    /// The next operation and its line number, skipping blank and comment lines.
    fn next_op(&mut self) -> Result<Option<(usize, Op)>, String> {
        while let Some((number, text)) = self.next_line()? {
            if let Some(op) = parse_line(number, text)? {
                return Ok(Some((number, op)));
            }
        }
        Ok(None)
    }
}

/// Copies what is read from `inner` into `copy`: standard input, kept for the second pass.
struct Tee<R, W> {
    inner: R,
    copy: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.copy.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// A temporary file, unlinked at once where the system allows it, so that nothing is left
/// behind however the command ends.
fn spool_file() -> Result<File, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let path = std::env::temp_dir().join(format!(
        "bypass-replay-{}-{nanos}.trace",
        std::process::id()
    ));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            format!(
                "cannot create a temporary copy of the trace in `{}`: {e}",
                path.display()
            )
        })?;
    let _ = std::fs::remove_file(&path);
    Ok(file)
}

/// The first pass: checks every line of the input, and returns a file to run it from, the
/// number of operations and the size in bytes.
fn check(args: &ReplayArgs) -> Result<(File, u64, u64), String> {
    let Some(path) = args.file.as_deref().filter(|p| p.as_os_str() != "-") else {
        if io::stdin().is_terminal() {
            eprintln!(
                "reading a trace from standard input, one operation a line; end it with Ctrl-D (`bypass replay FILE` reads a file, `bypass help replay` shows the format)"
            );
        }
        return spool(io::stdin().lock());
    };
    let mut file =
        File::open(path).map_err(|e| format!("cannot read trace `{}`: {e}", path.display()))?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        // A pipe or a device: read once.
        return spool(file);
    }
    let (ops, bytes) = count_ops(BufReader::new(&file))?;
    file.rewind()
        .map_err(|e| format!("cannot read trace `{}` again: {e}", path.display()))?;
    Ok((file, ops, bytes))
}

/// The first pass over input that can be read only once: checked while copied to a spool
/// file, which the second pass reads.
fn spool(input: impl Read) -> Result<(File, u64, u64), String> {
    let mut file = spool_file()?;
    let mut reader = BufReader::new(Tee {
        inner: input,
        copy: BufWriter::new(&file),
    });
    let (ops, bytes) = count_ops(&mut reader)?;
    let written = reader.into_inner().copy.flush();
    written
        .and_then(|()| file.rewind())
        .map_err(|e| format!("cannot keep a temporary copy of the trace: {e}"))?;
    Ok((file, ops, bytes))
}

/// Reads every line, checking it; returns the number of operations and of bytes.
fn count_ops(reader: impl BufRead) -> Result<(u64, u64), String> {
    let bar = bar(None, "checking");
    let mut lines = Lines::new(reader);
    let mut ops = 0;
    while lines.next_op()?.is_some() {
        ops += 1;
        if ops % 4096 == 0 {
            bar.set_position(lines.bytes);
        }
    }
    bar.finish_and_clear();
    Ok((ops, lines.bytes))
}

/// A progress bar over the trace's bytes on a terminal (hidden otherwise).
fn bar(len: Option<u64>, what: &str) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(len) => ProgressBar::new(len).with_style(
            ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta} left)",
            )
            .expect("a valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{prefix} [{elapsed_precise}] {spinner} {bytes}")
                .expect("a valid template"),
        ),
    };
    bar.set_prefix(format!("{what} the trace"));
    bar
}

/// A backend under replay: its registry and its bus, each with its replayer.
struct Replaying {
    backend: Backend,
    registry: Arc<dyn Registry>,
    replayer: Replayer,
    bus: Arc<dyn Bus>,
    bus_replayer: bus::trace::Replayer,
}

impl Replaying {
    fn new(backend: Backend) -> Replaying {
        Replaying {
            backend,
            registry: backend.make(),
            replayer: Replayer::default(),
            bus: backend.make_bus(),
            bus_replayer: bus::trace::Replayer::default(),
        }
    }

    fn step(&self, op: &Op) -> Step {
        match op {
            Op::Bypass(op) => Step::Bypass(self.replayer.step(&*self.registry, op)),
            Op::Bus(op) => Step::Bus(self.bus_replayer.step(&*self.bus, op)),
        }
    }
}

/// The two sequential models: what every backend must print.
#[derive(Default)]
struct Models {
    registry: Model,
    bus: BusModel,
}

impl Models {
    fn apply(&mut self, op: &Op) -> Step {
        match op {
            Op::Bypass(op) => Step::Bypass(self.registry.apply(op)),
            Op::Bus(op) => Step::Bus(self.bus.apply(op)),
        }
    }
}

pub(crate) fn run(args: &ReplayArgs) -> ExitCode {
    let (file, ops, bytes) = match check(args) {
        Ok(checked) => checked,
        Err(e) => return bad_input(e),
    };
    if ops == 0 {
        eprintln!(
            "note: the trace has no operations ({}): nothing to replay",
            if bytes == 0 {
                "it is empty"
            } else {
                "only blank lines and comments"
            }
        );
        return ExitCode::SUCCESS;
    }
    let bar = bar(Some(bytes), "replaying");
    let mut lines = Lines::new(BufReader::new(file));
    let mut out = BufWriter::new(io::stdout().lock());
    // A closed pipe (`| head`) is not an error worth reporting: printing stops, checking
    // goes on.
    let mut printing = true;
    let mut print = |step: &Step| {
        printing = printing && write!(out, "{step}").is_ok();
    };
    let mut differs = false;
    let result = match args.backend {
        BackendChoice::One(backend) => {
            let replaying = Replaying::new(backend);
            replay_lines(&mut lines, &bar, |_, op| {
                print(&replaying.step(op));
            })
        }
        BackendChoice::All => {
            let mut model = Models::default();
            let mut backends: Vec<Option<Replaying>> = Backend::ALL
                .iter()
                .map(|&b| Some(Replaying::new(b)))
                .collect();
            replay_lines(&mut lines, &bar, |line, op| {
                let expected = model.apply(op);
                print(&expected);
                for slot in &mut backends {
                    let Some(replaying) = slot else { continue };
                    let got = replaying.step(op);
                    if got != expected {
                        bar.suspend(|| {
                            eprintln!(
                                "error: {} differs from the model at line {line} (`{op}`)\n{}:\n{}model:\n{}",
                                replaying.backend,
                                replaying.backend,
                                indent(&got),
                                indent(&expected),
                            );
                        });
                        differs = true;
                        // Its state has left the model's: later lines would only repeat it.
                        *slot = None;
                    }
                }
            })
        }
    };
    bar.finish_and_clear();
    let _ = out.flush();
    if let Err(e) = result {
        // The input changed between the passes.
        return bad_input(e);
    }
    if differs {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The second pass: `apply` on every operation with its line number, moving the bar.
fn replay_lines<R: BufRead>(
    lines: &mut Lines<R>,
    bar: &ProgressBar,
    mut apply: impl FnMut(usize, &Op),
) -> Result<(), String> {
    let mut step = 0u64;
    while let Some((line, op)) = lines.next_op()? {
        apply(line, &op);
        step += 1;
        if step % 1024 == 0 {
            bar.set_position(lines.bytes);
        }
    }
    Ok(())
}

fn indent(step: &Step) -> String {
    step.to_string()
        .lines()
        .map(|l| format!("  {l}\n"))
        .collect()
}
