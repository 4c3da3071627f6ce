//! Request routing from the one table of ARM operations (`arm::operations::OPERATIONS`), so the
//! sandbox serves exactly the calls the client issues, under the same names. Paths compare
//! case-insensitively, as ARM does.

use std::collections::HashMap;

use crate::arm::operations::{
    ACR_API_VERSION, NETWORK_API_VERSION, OPERATIONS, SUBSCRIPTIONS_API_VERSION,
};

/// `{R}` in the operation table's path templates.
const REGISTRY_PREFIX: &str = "/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}";

/// Operations the sandbox serves beyond the client's table (name, method, path template).
const EXTRA: &[(&str, &str, &str)] = &[(
    "get-private-link-resource",
    "GET",
    "{R}/privateLinkResources/{group}",
)];

/// api-versions accepted per provider: the client's own plus the other stable one in use
/// (2025-04-01 is the default of older Python SDKs).
pub const ACR_API_VERSIONS: &[&str] = &[ACR_API_VERSION, "2025-04-01"];
pub const NETWORK_API_VERSIONS: &[&str] = &[NETWORK_API_VERSION, "2025-05-01"];
pub const SUBSCRIPTIONS_API_VERSIONS: &[&str] = &[SUBSCRIPTIONS_API_VERSION, "2020-01-01"];

/// A matched ARM operation and its path parameters (`s`, `rg`, `name`, `c`, `id`, `pe`, `group`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub operation: &'static str,
    pub params: HashMap<&'static str, String>,
}

impl Route {
    pub fn param(&self, key: &str) -> &str {
        self.params.get(key).map_or("", String::as_str)
    }

    /// The api-versions this operation accepts.
    pub fn api_versions(&self) -> &'static [&'static str] {
        match self.operation {
            "list-subscriptions" => SUBSCRIPTIONS_API_VERSIONS,
            "get-private-endpoint" => NETWORK_API_VERSIONS,
            _ => ACR_API_VERSIONS,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteMatch {
    Found(Route),
    /// The path is served, but not with this method.
    MethodNotAllowed,
    NotFound,
}

fn table() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    OPERATIONS
        .iter()
        .map(|o| (o.name, o.method, o.path))
        .chain(EXTRA.iter().copied())
}

/// Every operation name the sandbox counts requests under.
pub fn operation_names() -> Vec<&'static str> {
    table().map(|(name, _, _)| name).collect()
}

pub fn is_operation_name(name: &str) -> bool {
    table().any(|(n, _, _)| n == name)
}

/// Matches a percent-decoded path (no query) against the table.
pub fn resolve(method: &str, path: &str) -> RouteMatch {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let mut path_matched = false;
    for (name, op_method, template) in table() {
        let expanded = template.replace("{R}", REGISTRY_PREFIX);
        let Some(params) = match_template(&expanded, &segments) else {
            continue;
        };
        if op_method.eq_ignore_ascii_case(method) {
            return RouteMatch::Found(Route {
                operation: name,
                params,
            });
        }
        path_matched = true;
    }
    if path_matched {
        RouteMatch::MethodNotAllowed
    } else {
        RouteMatch::NotFound
    }
}

fn match_template(template: &str, segments: &[&str]) -> Option<HashMap<&'static str, String>> {
    let parts: Vec<&str> = template.split('/').skip(1).collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = HashMap::new();
    for (part, seg) in parts.iter().zip(segments) {
        if let Some(key) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            if seg.is_empty() {
                return None;
            }
            params.insert(param_key(key)?, (*seg).to_string());
        } else if !part.eq_ignore_ascii_case(seg) {
            return None;
        }
    }
    Some(params)
}

/// Template placeholders mapped to static keys (the table's templates only use these).
fn param_key(key: &str) -> Option<&'static str> {
    ["s", "rg", "name", "c", "id", "pe", "group"]
        .into_iter()
        .find(|k| *k == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "/subscriptions/S1/resourceGroups/rg1/providers/Microsoft.ContainerRegistry/registries/reg1";

    fn op(method: &str, path: &str) -> Route {
        match resolve(method, path) {
            RouteMatch::Found(r) => r,
            other => panic!("{method} {path}: {other:?}"),
        }
    }

    #[test]
    fn every_table_operation_is_routable() {
        for o in OPERATIONS {
            let path = o
                .path
                .replace("{R}", REGISTRY_PREFIX)
                .replace(['{', '}'], "");
            assert_eq!(op(o.method, &path).operation, o.name, "{}", o.path);
        }
    }

    #[test]
    fn paths_match_case_insensitively_and_capture_parameters() {
        let r = op(
            "GET",
            &format!("{}/PRIVATEENDPOINTCONNECTIONS/pe1.conn", R.to_lowercase()),
        );
        assert_eq!(r.operation, "get-connection");
        assert_eq!(r.param("s"), "s1");
        assert_eq!(r.param("c"), "pe1.conn");
        assert_eq!(
            op("put", &format!("{R}/privateEndpointConnections/x/")).operation,
            "put-connection"
        );
        assert_eq!(
            op("GET", &format!("{R}/privateLinkResources/registry")).operation,
            "get-private-link-resource"
        );
        assert_eq!(op("GET", "/subscriptions").operation, "list-subscriptions");
        assert_eq!(
            op("GET", "/subscriptions").api_versions(),
            SUBSCRIPTIONS_API_VERSIONS
        );
        assert_eq!(
            op(
                "GET",
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/pe"
            )
            .api_versions(),
            NETWORK_API_VERSIONS
        );
    }

    #[test]
    fn unknown_paths_and_methods_are_told_apart() {
        assert_eq!(resolve("POST", R), RouteMatch::MethodNotAllowed);
        assert_eq!(
            resolve("GET", &format!("{R}/webhooks")),
            RouteMatch::NotFound
        );
        assert_eq!(resolve("GET", "/"), RouteMatch::NotFound);
    }
}
