//! The virtio bus's costs against its population, from criterion: a device's
//! register+unregister against live devices (`bus_device`), a driver's against the devices it
//! binds (`bus_driver`).

use super::Chart;
use super::population::population_chart;
use super::series::{Colors, Line};
use crate::criterion::{Benchmark, CriterionData};
use crate::schema::BenchGroup;

/// The number after `key=` in a criterion parameter such as `live=1000/drivers=8`.
fn field(parameter: &str, key: &str) -> Option<f64> {
    parameter
        .split('/')
        .find_map(|part| part.strip_prefix(key)?.strip_prefix('='))?
        .parse()
        .ok()
}

/// A line per backend of `group`, each benchmark at `point` (none where it gives none).
fn lines(
    criterion: &CriterionData,
    colors: &Colors,
    backends: &[String],
    group: BenchGroup,
    point: impl Fn(&Benchmark) -> Option<(f64, f64)>,
) -> Vec<Line> {
    backends
        .iter()
        .map(|backend| {
            let points = criterion
                .group(group)
                .filter(|b| &b.function == backend)
                .filter_map(&point)
                .collect();
            Line::backend(backend, colors, points)
        })
        .filter(|line| !line.points.is_empty())
        .collect()
}

/// Why a bus group cannot be drawn: absent, or with no point this report can read.
fn missing(criterion: &CriterionData, group: BenchGroup) -> String {
    if criterion.has_group(group) {
        format!("criterion `{group}` has no point this report can read")
    } else {
        format!("no criterion `{group}` data (run `cargo bench -p bypass-benches --bench bus`)")
    }
}

/// The drivers count most `bus_device` benchmarks were made with: the line the chart draws.
fn usual_drivers(criterion: &CriterionData) -> Option<f64> {
    let mut counts: Vec<(f64, usize)> = Vec::new();
    for d in criterion
        .group(BenchGroup::BusDevice)
        .filter_map(|b| field(&b.parameter, "drivers"))
    {
        match counts.iter_mut().find(|(c, _)| *c == d) {
            Some((_, n)) => *n += 1,
            None => counts.push((d, 1)),
        }
    }
    // The most points; on a tie, the fewer drivers.
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.total_cmp(&a.0)))
        .map(|(d, _)| d)
}

/// The cost of one device register+unregister against live devices, log-log, at the usual
/// number of drivers.
pub(crate) fn device_population(
    criterion: &CriterionData,
    colors: &Colors,
    backends: &[String],
) -> Result<Chart, String> {
    let title = "Bus: device register+unregister cost against live devices";
    let drivers =
        usual_drivers(criterion).ok_or_else(|| missing(criterion, BenchGroup::BusDevice))?;
    let lines = lines(criterion, colors, backends, BenchGroup::BusDevice, |b| {
        if field(&b.parameter, "drivers") != Some(drivers) {
            return None;
        }
        let per_cycle = b.median.point / b.elements.unwrap_or(1).max(1) as f64;
        Some((field(&b.parameter, "live")?, per_cycle))
    });
    if lines.is_empty() {
        return Err(missing(criterion, BenchGroup::BusDevice));
    }
    let (svg, _) = population_chart(title, "live devices", "time per cycle (one thread)", lines)?;
    Ok(Chart {
        file: "bus-device-population.svg".into(),
        title: title.into(),
        caption: format!(
            "Time to register one device (its walk of the drivers, and the probe that binds it) and unregister it (its driver's remove), on one thread, among the given number of live devices and {drivers} drivers (criterion `bus_device`, median), log-log."
        ),
        svg,
    })
}

/// The cost of one driver register+unregister against the devices it binds, log-log.
pub(crate) fn driver_population(
    criterion: &CriterionData,
    colors: &Colors,
    backends: &[String],
) -> Result<Chart, String> {
    let title = "Bus: driver register+unregister cost against bound devices";
    let lines = lines(criterion, colors, backends, BenchGroup::BusDriver, |b| {
        Some((field(&b.parameter, "devices")?, b.median.point))
    });
    if lines.is_empty() {
        return Err(missing(criterion, BenchGroup::BusDriver));
    }
    let (svg, _) = population_chart(
        title,
        "bound devices",
        "time per register+unregister",
        lines,
    )?;
    Ok(Chart {
        file: "bus-driver-population.svg".into(),
        title: title.into(),
        caption: "Time to register a driver that binds the given number of devices (a probe each) and unregister it (a remove each), on one thread (criterion `bus_driver`, median), log-log: a driver reload's cost.".into(),
        svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::criterion::tests::{temp_dir, write_benchmark};

    #[test]
    fn fields_of_a_nested_parameter() {
        assert_eq!(field("live=1000/drivers=8", "live"), Some(1000.0));
        assert_eq!(field("live=1000/drivers=8", "drivers"), Some(8.0));
        assert_eq!(field("devices=5", "devices"), Some(5.0));
        assert_eq!(field("lived=5", "live"), None);
    }

    #[test]
    fn both_charts_from_criterion_and_none_without() {
        let root = temp_dir("charts-bus");
        for (backend, ns) in [("mutex-map", 400.0), ("rcu", 300.0)] {
            for live in [1u64, 1000, 100_000] {
                write_benchmark(
                    &root,
                    "bus_device",
                    backend,
                    &format!("live={live}/drivers=8"),
                    1,
                    ns,
                );
            }
            // Another drivers count, fewer points: not on the chart.
            write_benchmark(&root, "bus_device", backend, "live=1000/drivers=64", 1, 9e9);
            for devices in [1u64, 1000] {
                write_benchmark(
                    &root,
                    "bus_driver",
                    backend,
                    &format!("devices={devices}"),
                    devices,
                    ns * devices as f64,
                );
            }
        }
        let criterion = CriterionData::read(&root);
        let backends = vec!["mutex-map".to_string(), "rcu".to_string()];
        let colors = Colors::new(&backends);
        assert_eq!(usual_drivers(&criterion), Some(8.0));
        let device = device_population(&criterion, &colors, &backends).unwrap();
        assert!(device.caption.contains("8 drivers"), "{}", device.caption);
        // The 64-driver point (9 s) would stretch the time axis to seconds.
        assert!(device.svg.contains(" ns\n</text>"), "{}", device.svg);
        assert!(!device.svg.contains(" s\n</text>"), "{}", device.svg);
        let driver = driver_population(&criterion, &colors, &backends).unwrap();
        assert_eq!(driver.file, "bus-driver-population.svg");
        std::fs::remove_dir_all(&root).unwrap();

        let none = CriterionData::default();
        let err = device_population(&none, &colors, &backends).unwrap_err();
        assert!(err.contains("no criterion `bus_device` data"), "{err}");
        assert!(driver_population(&none, &colors, &backends).is_err());
    }
}
