//! Estate parsing (ARM and az CLI shapes) followed by evaluation under a fixed policy: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use linkguard::model::Estate;
use linkguard::policy::{Policy, evaluate_estate};

const POLICY: &str = r#"
version = 1
[connections]
default = "reject"
[[connections.rules]]
name = "subnets"
action = "approve"
match.subnets = ["/subscriptions/s/resourceGroups/n/providers/Microsoft.Network/virtualNetworks/hub"]
match.request_message = "^CHG"
[network]
default_action = "Deny"
allowed_ip_ranges = ["203.0.113.0/24"]
remediate = true
"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(estate) = Estate::from_json_str(text) else { return };
    let Ok(policy) = Policy::parse("fuzz.toml", POLICY) else { return };
    let plan = evaluate_estate(&policy, &estate);
    let _ = serde_json::to_string(&plan);
});
