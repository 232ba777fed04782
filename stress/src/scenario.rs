//! The stress scenarios: the workloads of PROTOCOL.md that production VMMs produce.

/// A workload, by name.
#[derive(Debug)]
pub(crate) struct ScenarioInfo {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
}

pub(crate) const SCENARIOS: &[ScenarioInfo] = &[
    ScenarioInfo {
        name: "irqfd-flood",
        description: "87,000 tokens, a consumer and a producer each, registered from 1,024 threads, then all unregistered",
    },
    ScenarioInfo {
        name: "boot-storm",
        description: "64 VMs boot together: producers per device in a batch, consumers one vector at a time as the guest unmasks",
    },
    ScenarioInfo {
        name: "serverless-churn",
        description: "4,000 live virtio-only microVMs of ~10 consumers that never meet a producer; VMs created and destroyed",
    },
    ScenarioInfo {
        name: "vector-toggle",
        description: "one VM, 2,048-entry MSI-X table: the guest masks and unmasks vectors, unregistering and re-registering consumers",
    },
    ScenarioInfo {
        name: "hotplug-loop",
        description: "hot-add and remove of a 257-vector VF, producers removed in bulk before consumers, while vCPUs unmask",
    },
    ScenarioInfo {
        name: "restore-storm",
        description: "250 VMs restored in parallel, each from its own thread, consumers first then producers",
    },
    ScenarioInfo {
        name: "delivery-lookup",
        description: "the interrupt path: 99% lookups, 1% register/unregister, over 100,000 live tokens",
    },
];
