//! The az CLI prints resources flattened (`az acr show` hoists `properties` to the top level);
//! ARM wraps them in `properties`. Both normalize to the ARM shape here, so one set of typed models
//! reads both and the sandbox serves what ARM would.

use serde_json::{Map, Value};

/// Keys that sit beside `properties` in ARM's envelope (plus the CLI's own `resourceGroup`).
const ENVELOPE: &[&str] = &[
    "id",
    "name",
    "type",
    "location",
    "tags",
    "sku",
    "identity",
    "systemData",
    "etag",
    "zones",
    "kind",
    "resourceGroup",
];

/// The az CLI prints network rules with its SDK's attribute names, not ARM's wire names:
/// `(rule list, az name, ARM name)`.
const AZ_RULE_KEYS: &[(&str, &str, &str)] = &[
    ("ipRules", "ipAddressOrRange", "value"),
    ("virtualNetworkRules", "virtualNetworkResourceId", "id"),
];

/// Registry body in either shape -> ARM shape (connections and network rules included).
pub fn registry_to_arm(value: Value) -> Value {
    let mut reg = wrap_properties(value);
    if let Some(rule_set) = reg
        .pointer_mut("/properties/networkRuleSet")
        .and_then(Value::as_object_mut)
    {
        for (list, az_name, arm_name) in AZ_RULE_KEYS {
            let rules = rule_set.get_mut(*list).and_then(Value::as_array_mut);
            for rule in rules.into_iter().flatten().filter_map(Value::as_object_mut) {
                rename_key(rule, az_name, arm_name);
            }
        }
    }
    if let Some(conns) = reg
        .pointer_mut("/properties/privateEndpointConnections")
        .and_then(Value::as_array_mut)
    {
        for c in conns.iter_mut() {
            *c = wrap_properties(std::mem::take(c));
        }
    }
    reg
}

/// Connection body in either shape -> ARM shape.
pub fn connection_to_arm(value: Value) -> Value {
    wrap_properties(value)
}

/// Private endpoint body in either shape -> ARM shape (service connections included).
pub fn endpoint_to_arm(value: Value) -> Value {
    let mut pe = wrap_properties(value);
    for key in [
        "privateLinkServiceConnections",
        "manualPrivateLinkServiceConnections",
    ] {
        if let Some(list) = pe
            .get_mut("properties")
            .and_then(|p| p.get_mut(key))
            .and_then(Value::as_array_mut)
        {
            for c in list.iter_mut() {
                *c = wrap_properties(std::mem::take(c));
            }
        }
    }
    pe
}

/// Renames `from` to `to` unless the ARM name is already there (then ARM's value wins).
fn rename_key(obj: &mut Map<String, Value>, from: &str, to: &str) {
    if obj.contains_key(to) {
        return;
    }
    if let Some(v) = obj.remove(from) {
        obj.insert(to.to_string(), v);
    }
}

fn wrap_properties(value: Value) -> Value {
    let Value::Object(mut obj) = value else {
        return value;
    };
    if obj.get("properties").is_some_and(Value::is_object) {
        return Value::Object(obj);
    }
    obj.remove("properties");
    let mut envelope = Map::new();
    let mut props = Map::new();
    for (k, v) in obj {
        if ENVELOPE.contains(&k.as_str()) {
            envelope.insert(k, v);
        } else {
            props.insert(k, v);
        }
    }
    envelope.insert("properties".to_string(), Value::Object(props));
    Value::Object(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattened_registry_is_wrapped_and_arm_shape_untouched() {
        let cli = json!({"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r",
            "name": "r", "resourceGroup": "rg", "publicNetworkAccess": "Disabled",
            "privateEndpointConnections": [{"id": "x", "privateLinkServiceConnectionState": {"status": "Pending"}}]});
        let arm = registry_to_arm(cli);
        assert_eq!(arm["properties"]["publicNetworkAccess"], "Disabled");
        assert_eq!(
            arm["properties"]["privateEndpointConnections"][0]["properties"]["privateLinkServiceConnectionState"]
                ["status"],
            "Pending"
        );
        assert_eq!(registry_to_arm(arm.clone()), arm);
    }

    #[test]
    fn az_network_rule_names_become_arm_names() {
        // What `az acr show` prints for a registry with an IP rule and a legacy VNet rule.
        let subnet = "/subscriptions/s/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/hub/subnets/build";
        let cli = json!({"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r",
            "name": "r", "resourceGroup": "rg",
            "networkRuleSet": {"defaultAction": "Deny",
                "ipRules": [{"action": "Allow", "ipAddressOrRange": "203.0.113.10"}],
                "virtualNetworkRules": [{"action": "Allow", "virtualNetworkResourceId": subnet}]}});
        let arm = registry_to_arm(cli);
        let rules = &arm["properties"]["networkRuleSet"];
        assert_eq!(
            rules["ipRules"][0],
            json!({"action": "Allow", "value": "203.0.113.10"})
        );
        assert_eq!(
            rules["virtualNetworkRules"][0],
            json!({"action": "Allow", "id": subnet})
        );
        let registry: crate::model::registry::Registry = serde_json::from_value(arm).unwrap();
        assert_eq!(registry.ip_rules()[0].value, "203.0.113.10");
        assert_eq!(registry.vnet_rule_count(), 1);
        // A rule read on its own (not through the estate) takes az's name too.
        let rule: crate::model::IpRule = serde_json::from_value(
            json!({"action": "Allow", "ipAddressOrRange": "198.51.100.0/24"}),
        )
        .unwrap();
        assert_eq!(rule.value, "198.51.100.0/24");
    }
}
