//! `bypass run` on the bus scenarios: each runs on every backend with failing, panicking and
//! slow probes and with chaos on, and breaks no guarantee.

use std::process::Command;

fn run(scenario: &str, backend: &str) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bypass"))
        .args(["run", "--scenario", scenario, "--backend", backend])
        .args(["--scale", "0.01", "--seed", "7"])
        .args(["--fail-rate", "0.1", "--panic-rate", "0.05"])
        .args([
            "--callback-cost",
            "1us",
            "--time-cap",
            "none",
            "--chaos",
            "5",
        ])
        .output()
        .expect("run bypass");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn every_backend_is_clean(scenario: &str, operations: &[&str]) {
    for backend in ["mutex-list", "mutex-map", "sharded", "rcu", "lockfree"] {
        let (code, stdout, stderr) = run(scenario, backend);
        assert_eq!(code, Some(0), "{scenario} on {backend}: {stdout}{stderr}");
        assert!(stdout.contains("no violations"), "{stdout}");
        // The run injected the pauses it was asked for, and says so.
        assert!(stdout.contains("chaos seed 5"), "{stdout}");
        assert!(
            stdout.contains(&format!("{scenario} on {backend}")),
            "{stdout}"
        );
        for op in operations {
            assert!(
                stdout.contains(op),
                "{scenario} on {backend}: no {op}: {stdout}"
            );
        }
    }
}

#[test]
fn virtio_boot_is_clean_on_every_backend() {
    every_backend_is_clean(
        "virtio-boot",
        &["register-device", "register-driver", "rescan", "lookup"],
    );
}

#[test]
fn driver_reload_is_clean_on_every_backend() {
    every_backend_is_clean(
        "driver-reload",
        &["unregister-driver", "register-driver", "unregister-device"],
    );
}

#[test]
fn virtio_hotplug_is_clean_on_every_backend() {
    every_backend_is_clean("virtio-hotplug", &["lookup", "register-device"]);
}

#[test]
fn list_shows_the_bus_scenarios() {
    let out = Command::new(env!("CARGO_BIN_EXE_bypass"))
        .arg("list")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    for scenario in ["virtio-boot", "driver-reload", "virtio-hotplug"] {
        assert!(stdout.contains(scenario), "{stdout}");
    }
}
