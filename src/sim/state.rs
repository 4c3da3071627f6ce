//! The sandbox's world: the estate's registries, connections and private endpoints as ARM JSON, and
//! the long-running operations that change them. Pure state, no I/O: the HTTP layer calls in.

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::{ArmError, SimError};
use crate::model::shape::{connection_to_arm, endpoint_to_arm, registry_to_arm};
use crate::model::{ConnectionStatus, Estate, ResourceId};

pub const REGISTRY_TYPE: &str = "Microsoft.ContainerRegistry/registries";
pub const CONNECTION_TYPE: &str =
    "Microsoft.ContainerRegistry/registries/privateEndpointConnections";
pub const ENDPOINT_TYPE: &str = "Microsoft.Network/privateEndpoints";
const LINK_RESOURCE_TYPE: &str = "Microsoft.ContainerRegistry/registries/privateLinkResources";

/// Who `systemData` says made a change (the bearer token is opaque to the sandbox).
const CALLER: &str = "linkguard-sim-client";
const SEEDER: &str = "linkguard-sim";
/// ACR's limit on IP rules (Premium).
const MAX_IP_RULES: usize = 200;

#[derive(Clone, Debug)]
struct RegistryEntry {
    id: ResourceId,
    /// ARM body without `properties.privateEndpointConnections` (kept in `connections`).
    body: Value,
    connections: Vec<Value>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum LroState {
    InProgress,
    Succeeded,
    Failed,
}

impl LroState {
    fn as_str(&self) -> &'static str {
        match self {
            LroState::InProgress => "InProgress",
            LroState::Succeeded => "Succeeded",
            LroState::Failed => "Failed",
        }
    }
}

#[derive(Clone, Debug)]
enum LroKind {
    /// The validated patch, applied on success.
    PatchRegistry(Value),
    /// The new `privateLinkServiceConnectionState`, applied on success.
    PutConnection(Value),
    DeleteConnection,
}

#[derive(Clone, Debug)]
struct Lro {
    id: String,
    /// Registry id (patch) or connection id (put, delete).
    target: ResourceId,
    kind: LroKind,
    polls_left: u32,
    fail: bool,
    state: LroState,
    started: String,
    ended: Option<String>,
    error: Option<Value>,
    /// `provisioningState` before the operation, restored when it fails.
    previous_provisioning: Value,
    /// When ARM would finish the operation even if nobody polls it (a client that crashed after
    /// its PUT still changed the resource).
    due: Instant,
}

/// What the status resource of an operation says after a poll.
#[derive(Clone, Debug)]
pub(crate) struct LroView {
    pub state: LroState,
    /// Delete operations are polled through `Location` (202 / 204), the others through
    /// `Azure-AsyncOperation` (a status body).
    pub location_style: bool,
    pub body: Value,
}

/// How the sandbox runs long-running operations.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LroSettings {
    /// Polls answered `InProgress` before the operation finishes.
    pub polls: u32,
    /// How long an operation nobody polls takes to finish on its own.
    pub unattended: Duration,
}

impl LroSettings {
    /// `polls` polls at the advertised `Retry-After` (at least 100 ms each), plus one.
    pub(crate) fn new(polls: u32, retry_after_secs: u64) -> Self {
        let step = Duration::from_secs(retry_after_secs).max(Duration::from_millis(100));
        Self {
            polls,
            unattended: step * (polls + 1),
        }
    }
}

/// A connection a test adds "from the network side", as a private endpoint creation would.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewConnection {
    /// Connection name; default `{endpoint name}.{random}` like ARM's generated names.
    #[serde(default)]
    pub name: Option<String>,
    /// The private endpoint's ARM id.
    pub private_endpoint: String,
    /// Default `Pending`.
    #[serde(default)]
    pub status: Option<String>,
    /// The requester's message (shown as the state's description).
    #[serde(default)]
    pub description: Option<String>,
}

impl NewConnection {
    pub fn pending(private_endpoint: &str, description: &str) -> Self {
        Self {
            name: None,
            private_endpoint: private_endpoint.to_string(),
            status: None,
            description: Some(description.to_string()),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct World {
    registries: Vec<RegistryEntry>,
    endpoints: Vec<(ResourceId, Value)>,
    /// Subscriptions in the order they first appear (original case).
    subscriptions: Vec<String>,
    /// Lower-cased: the subscriptions the caller may read (those in the estate).
    readable: BTreeSet<String>,
    /// Lower-cased (subscription, resource group) pairs that exist.
    groups: BTreeSet<(String, String)>,
    /// Operations by lower-cased id.
    ops: HashMap<String, Lro>,
    /// Lower-cased ids of registries the caller may not read (a deny on that one registry), set by
    /// tests through [`Sandbox::deny_registry`](super::Sandbox::deny_registry).
    denied_registries: BTreeSet<String>,
}

pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

impl World {
    /// Loads an estate (DESIGN 3.1). Validation is `Estate::from_value` first (same messages), then
    /// what the sandbox needs besides: ids of the right types, connections under their registry,
    /// no duplicates.
    pub(crate) fn from_estate(value: Value) -> Result<Self, String> {
        Estate::from_value(value.clone())?;
        let (registries, endpoints) = match value {
            Value::Array(regs) => (regs, Vec::new()),
            Value::Object(mut obj) => {
                let regs = match obj.remove("registries") {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                let pes = match obj.remove("privateEndpoints") {
                    Some(Value::Array(a)) => a,
                    _ => Vec::new(),
                };
                (regs, pes)
            }
            _ => (Vec::new(), Vec::new()),
        };
        let mut world = World::default();
        let created = now_rfc3339();
        for (i, raw) in registries.into_iter().enumerate() {
            let at = format!("registries[{i}]");
            let mut body = registry_to_arm(raw);
            let id = parse_id(&body, &at)?;
            if !id.is_type(REGISTRY_TYPE) {
                return Err(format!(
                    "{at}.id: `{id}` is not a registry id (…/providers/{REGISTRY_TYPE}/{{name}})"
                ));
            }
            if let Some(j) = world.registries.iter().position(|r| r.id == id) {
                return Err(format!(
                    "{at}.id: `{id}` is listed twice (also registries[{j}])"
                ));
            }
            let conns = match body
                .get_mut("properties")
                .and_then(|p| p.as_object_mut())
                .and_then(|p| p.remove("privateEndpointConnections"))
            {
                Some(Value::Array(list)) => list,
                _ => Vec::new(),
            };
            normalize(&mut body, &id, REGISTRY_TYPE, &created);
            let mut connections: Vec<Value> = Vec::new();
            for (j, raw_conn) in conns.into_iter().enumerate() {
                let at = format!("{at}.properties.privateEndpointConnections[{j}]");
                let mut conn = connection_to_arm(raw_conn);
                let conn_id = parse_id(&conn, &at)?;
                if !conn_id.is_type(CONNECTION_TYPE) || conn_id.parent().as_ref() != Some(&id) {
                    return Err(format!(
                        "{at}.id: `{conn_id}` is not a private endpoint connection of `{id}`"
                    ));
                }
                if connections.iter().any(|c| same_name(c, conn_id.name())) {
                    return Err(format!(
                        "{at}.id: connection `{}` is listed twice",
                        conn_id.name()
                    ));
                }
                normalize(&mut conn, &conn_id, CONNECTION_TYPE, &created);
                connections.push(conn);
            }
            world.note_scope(&id);
            world.registries.push(RegistryEntry {
                id,
                body,
                connections,
            });
        }
        for (i, raw) in endpoints.into_iter().enumerate() {
            world.insert_endpoint(raw, &format!("privateEndpoints[{i}]"), &created)?;
        }
        Ok(world)
    }

    fn insert_endpoint(&mut self, raw: Value, at: &str, created: &str) -> Result<(), String> {
        let mut pe = endpoint_to_arm(raw);
        let id = parse_id(&pe, at)?;
        if !id.is_type(ENDPOINT_TYPE) || id.resource_group().is_none() {
            return Err(format!(
                "{at}.id: `{id}` is not a private endpoint id (…/resourceGroups/{{rg}}/providers/{ENDPOINT_TYPE}/{{name}})"
            ));
        }
        if self.endpoints.iter().any(|(e, _)| *e == id) {
            return Err(format!("{at}.id: `{id}` is listed twice"));
        }
        normalize(&mut pe, &id, ENDPOINT_TYPE, created);
        self.note_scope(&id);
        self.endpoints.push((id, pe));
        Ok(())
    }

    fn note_scope(&mut self, id: &ResourceId) {
        let sub = id.subscription().to_ascii_lowercase();
        if self.readable.insert(sub.clone()) {
            self.subscriptions.push(id.subscription().to_string());
        }
        if let Some(rg) = id.resource_group() {
            self.groups.insert((sub, rg.to_ascii_lowercase()));
        }
    }

    // ---- reads ------------------------------------------------------------------------------

    pub(crate) fn subscriptions_json(&self) -> Vec<Value> {
        self.subscriptions
            .iter()
            .map(|s| {
                json!({
                    "id": format!("/subscriptions/{s}"),
                    "authorizationSource": "RoleBased",
                    "managedByTenants": [],
                    "subscriptionId": s,
                    "tenantId": "00000000-0000-0000-0000-00000000000a",
                    "displayName": format!("Sandbox subscription {s}"),
                    "state": "Enabled",
                    "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"}
                })
            })
            .collect()
    }

    fn check_readable(
        &self,
        subscription: &str,
        action: &str,
        scope: &str,
    ) -> Result<(), ArmError> {
        if self.readable.contains(&subscription.to_ascii_lowercase()) {
            Ok(())
        } else {
            Err(ArmError::authorization_failed(action, scope))
        }
    }

    fn check_group(&self, subscription: &str, rg: &str) -> Result<(), ArmError> {
        if self
            .groups
            .contains(&(subscription.to_ascii_lowercase(), rg.to_ascii_lowercase()))
        {
            Ok(())
        } else {
            Err(ArmError::resource_group_not_found(rg))
        }
    }

    #[cfg(test)]
    pub(crate) fn list_registries(
        &self,
        subscription: &str,
        rg: Option<&str>,
    ) -> Result<Vec<Value>, ArmError> {
        Ok(self
            .list_registries_window(subscription, rg, 0, usize::MAX)?
            .0)
    }

    /// One window of the registry list (`skip`, at most `take`) and the list's full length. Only
    /// the window is rendered: a page of a 10,000-registry estate costs one page, not the estate.
    pub(crate) fn list_registries_window(
        &self,
        subscription: &str,
        rg: Option<&str>,
        skip: usize,
        take: usize,
    ) -> Result<(Vec<Value>, usize), ArmError> {
        let scope = match rg {
            Some(rg) => format!("/subscriptions/{subscription}/resourceGroups/{rg}"),
            None => format!("/subscriptions/{subscription}"),
        };
        self.check_readable(
            subscription,
            "Microsoft.ContainerRegistry/registries/read",
            &scope,
        )?;
        if let Some(rg) = rg {
            self.check_group(subscription, rg)?;
        }
        let listed = self
            .registries
            .iter()
            .filter(|r| r.id.subscription().eq_ignore_ascii_case(subscription))
            .filter(|r| {
                rg.is_none_or(|rg| {
                    r.id.resource_group()
                        .is_some_and(|g| g.eq_ignore_ascii_case(rg))
                })
            });
        let total = listed.clone().count();
        let window = listed.skip(skip).take(take).map(render_registry).collect();
        Ok((window, total))
    }

    fn registry_index(&self, s: &str, rg: &str, name: &str) -> Result<usize, ArmError> {
        let scope =
            format!("/subscriptions/{s}/resourceGroups/{rg}/providers/{REGISTRY_TYPE}/{name}");
        self.check_readable(s, "Microsoft.ContainerRegistry/registries/read", &scope)?;
        self.check_group(s, rg)?;
        let wanted = ResourceId::parse(&scope).map_err(|e| ArmError::bad_request(e.to_string()))?;
        if self.denied_registries.contains(&scope.to_ascii_lowercase()) {
            return Err(ArmError::authorization_failed(
                "Microsoft.ContainerRegistry/registries/read",
                &scope,
            ));
        }
        self.registries
            .iter()
            .position(|r| r.id == wanted)
            .ok_or_else(|| ArmError::not_found(&format!("{REGISTRY_TYPE}/{name}"), rg))
    }

    /// From now on, reads and writes of this registry (and its connections) answer 403
    /// `AuthorizationFailed`; lists still show it, as they only need the subscription's read.
    pub(crate) fn deny_registry(&mut self, id: &str) {
        self.denied_registries.insert(id.to_ascii_lowercase());
    }

    fn registry_at(&self, idx: usize) -> Result<&RegistryEntry, ArmError> {
        self.registries.get(idx).ok_or_else(|| {
            ArmError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "registry index out of range",
            )
        })
    }

    fn registry_at_mut(&mut self, idx: usize) -> Result<&mut RegistryEntry, ArmError> {
        self.registries.get_mut(idx).ok_or_else(|| {
            ArmError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "registry index out of range",
            )
        })
    }

    pub(crate) fn get_registry(&self, s: &str, rg: &str, name: &str) -> Result<Value, ArmError> {
        let idx = self.registry_index(s, rg, name)?;
        Ok(render_registry(self.registry_at(idx)?))
    }

    pub(crate) fn list_connections(
        &self,
        s: &str,
        rg: &str,
        name: &str,
    ) -> Result<Vec<Value>, ArmError> {
        let idx = self.registry_index(s, rg, name)?;
        Ok(self.registry_at(idx)?.connections.clone())
    }

    fn connection_index(&self, reg: usize, rg: &str, name: &str) -> Result<usize, ArmError> {
        let entry = self.registry_at(reg)?;
        entry
            .connections
            .iter()
            .position(|c| same_name(c, name))
            .ok_or_else(|| {
                ArmError::not_found(
                    &format!(
                        "{REGISTRY_TYPE}/{}/privateEndpointConnections/{name}",
                        entry.id.name()
                    ),
                    rg,
                )
            })
    }

    pub(crate) fn get_connection(
        &self,
        s: &str,
        rg: &str,
        name: &str,
        conn: &str,
    ) -> Result<Value, ArmError> {
        let reg = self.registry_index(s, rg, name)?;
        let idx = self.connection_index(reg, rg, conn)?;
        self.registry_at(reg)?
            .connections
            .get(idx)
            .cloned()
            .ok_or_else(|| ArmError::not_found(conn, rg))
    }

    /// The `registry` group, in the shape of `RegistryListPrivateLinkResources.json`.
    pub(crate) fn private_link_resources(
        &self,
        s: &str,
        rg: &str,
        name: &str,
    ) -> Result<Vec<Value>, ArmError> {
        let idx = self.registry_index(s, rg, name)?;
        let entry = self.registry_at(idx)?;
        let region = entry
            .body
            .get("location")
            .and_then(Value::as_str)
            .unwrap_or("westus")
            .to_ascii_lowercase();
        Ok(vec![json!({
            "id": entry.id.child("privateLinkResources", "registry").to_string(),
            "name": "registry",
            "type": LINK_RESOURCE_TYPE,
            "properties": {
                "groupId": "registry",
                "requiredMembers": ["registry", format!("registry_data_{region}")],
                "requiredZoneNames": ["privatelink.azurecr.io"]
            }
        })])
    }

    pub(crate) fn get_private_endpoint(
        &self,
        s: &str,
        rg: &str,
        pe: &str,
    ) -> Result<Value, ArmError> {
        let scope =
            format!("/subscriptions/{s}/resourceGroups/{rg}/providers/{ENDPOINT_TYPE}/{pe}");
        self.check_readable(s, "Microsoft.Network/privateEndpoints/read", &scope)?;
        self.check_group(s, rg)?;
        let wanted = ResourceId::parse(&scope).map_err(|e| ArmError::bad_request(e.to_string()))?;
        self.endpoints
            .iter()
            .find(|(id, _)| *id == wanted)
            .map(|(_, body)| body.clone())
            .ok_or_else(|| ArmError::not_found(&format!("{ENDPOINT_TYPE}/{pe}"), rg))
    }

    // ---- writes (long-running) ----------------------------------------------------------------

    /// Starts a registry PATCH; answers the 201 body (the registry as it will be, `Updating`).
    pub(crate) fn begin_patch_registry(
        &mut self,
        (s, rg, name): (&str, &str, &str),
        patch: &Value,
        op_id: &str,
        fail: bool,
        settings: LroSettings,
    ) -> Result<Value, ArmError> {
        let idx = self.registry_index(s, rg, name)?;
        let entry = self.registry_at_mut(idx)?;
        let sku = entry
            .body
            .pointer("/sku/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let patch = validate_registry_patch(patch, &sku, entry.id.name())?;
        let mut preview = entry.body.clone();
        apply_registry_patch(&mut preview, &patch);
        set_provisioning(&mut preview, "Updating");
        let previous = set_provisioning(&mut entry.body, "Updating");
        set_at(
            &mut preview,
            &["properties", "privateEndpointConnections"],
            Value::Array(entry.connections.clone()),
        );
        let target = entry.id.clone();
        self.start_lro(
            op_id,
            target,
            LroKind::PatchRegistry(patch),
            fail,
            previous,
            settings,
        );
        Ok(preview)
    }

    /// Starts a connection PUT (approve / reject); answers the 201 body.
    pub(crate) fn begin_put_connection(
        &mut self,
        (s, rg, name, conn): (&str, &str, &str, &str),
        body: &Value,
        op_id: &str,
        fail: bool,
        settings: LroSettings,
    ) -> Result<Value, ArmError> {
        let reg = self.registry_index(s, rg, name)?;
        let idx = self.connection_index(reg, rg, conn)?;
        let entry = self.registry_at_mut(reg)?;
        let current = entry
            .connections
            .get_mut(idx)
            .ok_or_else(|| ArmError::not_found(conn, rg))?;
        let state = validate_connection_put(body, current)?;
        let mut preview = current.clone();
        set_at(
            &mut preview,
            &["properties", "privateLinkServiceConnectionState"],
            state.clone(),
        );
        set_provisioning(&mut preview, "Updating");
        let previous = set_provisioning(current, "Updating");
        let target = parse_id(current, "connection").map_err(ArmError::bad_request)?;
        self.start_lro(
            op_id,
            target,
            LroKind::PutConnection(state),
            fail,
            previous,
            settings,
        );
        Ok(preview)
    }

    /// Starts a connection DELETE; `false` when the connection does not exist (204).
    pub(crate) fn begin_delete_connection(
        &mut self,
        (s, rg, name, conn): (&str, &str, &str, &str),
        op_id: &str,
        fail: bool,
        settings: LroSettings,
    ) -> Result<bool, ArmError> {
        let reg = self.registry_index(s, rg, name)?;
        let Ok(idx) = self.connection_index(reg, rg, conn) else {
            return Ok(false);
        };
        let entry = self.registry_at_mut(reg)?;
        let current = entry
            .connections
            .get_mut(idx)
            .ok_or_else(|| ArmError::not_found(conn, rg))?;
        let previous = set_provisioning(current, "Deleting");
        let target = parse_id(current, "connection").map_err(ArmError::bad_request)?;
        self.start_lro(
            op_id,
            target,
            LroKind::DeleteConnection,
            fail,
            previous,
            settings,
        );
        Ok(true)
    }

    fn start_lro(
        &mut self,
        op_id: &str,
        target: ResourceId,
        kind: LroKind,
        fail: bool,
        previous: Value,
        settings: LroSettings,
    ) {
        let lro = Lro {
            id: op_id.to_string(),
            target,
            kind,
            polls_left: settings.polls,
            fail,
            state: LroState::InProgress,
            started: now_rfc3339(),
            ended: None,
            error: None,
            previous_provisioning: previous,
            due: Instant::now() + settings.unattended,
        };
        self.ops.insert(op_id.to_ascii_lowercase(), lro);
    }

    /// One poll of an operation's status resource: `InProgress` for the configured number of polls,
    /// then the operation finishes (applies its change, or fails and changes nothing).
    /// `target` is the resource the status URL lies under.
    pub(crate) fn poll(
        &mut self,
        op_id: &str,
        target: &ResourceId,
        status_path: &str,
    ) -> Result<LroView, ArmError> {
        let rg = target.resource_group().unwrap_or("").to_string();
        let missing = || ArmError::not_found(&format!("operationStatuses/{op_id}"), &rg);
        let key = op_id.to_ascii_lowercase();
        let lro = self.ops.get_mut(&key).ok_or_else(missing)?;
        if lro.target != *target {
            return Err(missing());
        }
        if lro.state == LroState::InProgress {
            if lro.polls_left > 0 {
                lro.polls_left -= 1;
            } else {
                self.finish(&key);
            }
        }
        let lro = self.ops.get(&key).ok_or_else(missing)?;
        let mut body = json!({"id": status_path, "name": lro.id, "status": lro.state.as_str(), "startTime": lro.started});
        if let Some(ended) = &lro.ended {
            set_at(&mut body, &["endTime"], json!(ended));
        }
        if let Some(error) = &lro.error {
            set_at(&mut body, &["error"], error.clone());
        }
        Ok(LroView {
            state: lro.state.clone(),
            location_style: matches!(lro.kind, LroKind::DeleteConnection),
            body,
        })
    }

    /// Ends an operation: applies its change, or fails and changes nothing.
    fn finish(&mut self, key: &str) {
        let Some(lro) = self.ops.get(key).cloned() else {
            return;
        };
        if lro.state != LroState::InProgress {
            return;
        }
        let outcome = if lro.fail {
            Err(
                json!({"code": "InternalServerError", "message": format!("The operation '{}' failed (fault lro-fail injected by the sandbox); the resource was not changed.", lro.id)}),
            )
        } else {
            self.apply(&lro)
        };
        if outcome.is_err() {
            self.restore_provisioning(&lro);
        }
        if let Some(done) = self.ops.get_mut(key) {
            done.ended = Some(now_rfc3339());
            match outcome {
                Ok(()) => done.state = LroState::Succeeded,
                Err(error) => {
                    done.state = LroState::Failed;
                    done.error = Some(error);
                }
            }
        }
    }

    /// Finishes every operation whose time has come, polled or not, as ARM does.
    pub(crate) fn settle(&mut self, now: Instant) {
        let due: Vec<String> = self
            .ops
            .iter()
            .filter(|(_, l)| l.state == LroState::InProgress && l.due <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            self.finish(&key);
        }
    }

    fn apply(&mut self, lro: &Lro) -> Result<(), Value> {
        let gone = |what: &ResourceId| json!({"code": "ResourceNotFound", "message": format!("The resource '{what}' no longer exists.")});
        match &lro.kind {
            LroKind::PatchRegistry(patch) => {
                let entry = self
                    .registries
                    .iter_mut()
                    .find(|r| r.id == lro.target)
                    .ok_or_else(|| gone(&lro.target))?;
                apply_registry_patch(&mut entry.body, patch);
                set_provisioning(&mut entry.body, "Succeeded");
                touch(&mut entry.body);
            }
            LroKind::PutConnection(state) => {
                let conn = self
                    .connection_mut(&lro.target)
                    .ok_or_else(|| gone(&lro.target))?;
                set_at(
                    conn,
                    &["properties", "privateLinkServiceConnectionState"],
                    state.clone(),
                );
                set_provisioning(conn, "Succeeded");
                touch(conn);
            }
            LroKind::DeleteConnection => {
                let parent = lro.target.parent().ok_or_else(|| gone(&lro.target))?;
                let entry = self
                    .registries
                    .iter_mut()
                    .find(|r| r.id == parent)
                    .ok_or_else(|| gone(&lro.target))?;
                entry
                    .connections
                    .retain(|c| !same_name(c, lro.target.name()));
            }
        }
        Ok(())
    }

    fn restore_provisioning(&mut self, lro: &Lro) {
        let previous = lro.previous_provisioning.clone();
        let body = match lro.kind {
            LroKind::PatchRegistry(_) => self
                .registries
                .iter_mut()
                .find(|r| r.id == lro.target)
                .map(|r| &mut r.body),
            LroKind::PutConnection(_) | LroKind::DeleteConnection => {
                self.connection_mut(&lro.target)
            }
        };
        if let Some(props) = body
            .and_then(|b| b.get_mut("properties"))
            .and_then(Value::as_object_mut)
        {
            if previous.is_null() {
                props.remove("provisioningState");
            } else {
                props.insert("provisioningState".into(), previous);
            }
        }
    }

    fn connection_mut(&mut self, id: &ResourceId) -> Option<&mut Value> {
        let parent = id.parent()?;
        let entry = self.registries.iter_mut().find(|r| r.id == parent)?;
        entry
            .connections
            .iter_mut()
            .find(|c| same_name(c, id.name()))
    }

    // ---- test hooks ---------------------------------------------------------------------------

    pub(crate) fn registry_json(&self, id: &str) -> Option<Value> {
        let id = ResourceId::parse(id).ok()?;
        self.registries
            .iter()
            .find(|r| r.id == id)
            .map(render_registry)
    }

    pub(crate) fn connection_json(&self, id: &str) -> Option<Value> {
        let id = ResourceId::parse(id).ok()?;
        let parent = id.parent()?;
        let entry = self.registries.iter().find(|r| r.id == parent)?;
        entry
            .connections
            .iter()
            .find(|c| same_name(c, id.name()))
            .cloned()
    }

    pub(crate) fn estate_json(&self) -> Value {
        json!({
            "registries": self.registries.iter().map(render_registry).collect::<Vec<_>>(),
            "privateEndpoints": self.endpoints.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>(),
        })
    }

    pub(crate) fn add_connection(
        &mut self,
        registry: &str,
        new: NewConnection,
    ) -> Result<Value, SimError> {
        let reg_id =
            ResourceId::parse(registry).map_err(|e| SimError::Invalid(format!("registry: {e}")))?;
        let pe = ResourceId::parse(&new.private_endpoint)
            .map_err(|e| SimError::Invalid(format!("privateEndpoint: {e}")))?;
        if !pe.is_type(ENDPOINT_TYPE) {
            return Err(SimError::Invalid(format!(
                "privateEndpoint: `{pe}` is not a {ENDPOINT_TYPE} id"
            )));
        }
        let status = parse_status(new.status.as_deref().unwrap_or("Pending"))?;
        let entry = self
            .registries
            .iter_mut()
            .find(|r| r.id == reg_id)
            .ok_or_else(|| SimError::NotFound(format!("registry `{reg_id}`")))?;
        let name = new
            .name
            .unwrap_or_else(|| format!("{}.{}", pe.name(), uuid::Uuid::new_v4()));
        if entry.connections.iter().any(|c| same_name(c, &name)) {
            return Err(SimError::Conflict(format!(
                "connection `{name}` on `{reg_id}`"
            )));
        }
        let id = entry.id.child("privateEndpointConnections", &name);
        let now = now_rfc3339();
        let conn = json!({
            "id": id.to_string(),
            "name": name,
            "type": CONNECTION_TYPE,
            "systemData": system_data(SEEDER, &now),
            "properties": {
                "privateEndpoint": {"id": pe.to_string()},
                "privateLinkServiceConnectionState": {
                    "status": status,
                    "description": new.description.unwrap_or_default(),
                    "actionsRequired": "None"
                },
                "provisioningState": "Succeeded"
            }
        });
        entry.connections.push(conn.clone());
        Ok(conn)
    }

    /// Changes a connection's state with no checks at all, as the endpoint's owner or the network
    /// would (e.g. `Disconnected` when the endpoint is deleted).
    pub(crate) fn set_connection_status(
        &mut self,
        connection: &str,
        status: &str,
        description: Option<&str>,
    ) -> Result<Value, SimError> {
        let id = ResourceId::parse(connection)
            .map_err(|e| SimError::Invalid(format!("connection: {e}")))?;
        let status = parse_status(status)?;
        let conn = self
            .connection_mut(&id)
            .ok_or_else(|| SimError::NotFound(format!("connection `{id}`")))?;
        let description = match description {
            Some(d) => d.to_string(),
            None => conn
                .pointer("/properties/privateLinkServiceConnectionState/description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        };
        let state =
            json!({"status": status, "description": description, "actionsRequired": "None"});
        set_at(
            conn,
            &["properties", "privateLinkServiceConnectionState"],
            state,
        );
        touch(conn);
        Ok(conn.clone())
    }

    pub(crate) fn add_private_endpoint(&mut self, body: Value) -> Result<Value, SimError> {
        // Same typed validation as the estate's privateEndpoints.
        let probe = json!({"registries": [], "privateEndpoints": [body.clone()]});
        Estate::from_value(probe).map_err(SimError::Invalid)?;
        let at = format!("privateEndpoints[{}]", self.endpoints.len());
        self.insert_endpoint(body, &at, &now_rfc3339())
            .map_err(SimError::Invalid)?;
        Ok(self
            .endpoints
            .last()
            .map(|(_, b)| b.clone())
            .unwrap_or(Value::Null))
    }
}

/// Sets `value` at `path`, turning anything on the way that is not an object into one (ARM bodies
/// are objects all the way down; this only guards against a malformed estate).
pub(crate) fn set_at(target: &mut Value, path: &[&str], value: Value) {
    let Some((last, parents)) = path.split_last() else {
        *target = value;
        return;
    };
    let mut node = target;
    for key in parents {
        if !node.is_object() {
            *node = json!({});
        }
        let Some(obj) = node.as_object_mut() else {
            return;
        };
        node = obj.entry(key.to_string()).or_insert_with(|| json!({}));
    }
    if !node.is_object() {
        *node = json!({});
    }
    if let Some(obj) = node.as_object_mut() {
        obj.insert(last.to_string(), value);
    }
}

fn parse_status(status: &str) -> Result<String, SimError> {
    match ConnectionStatus::parse(status) {
        ConnectionStatus::Other(s) => Err(SimError::Invalid(format!(
            "status: `{s}` is not one of Pending, Approved, Rejected, Disconnected"
        ))),
        known => Ok(known.as_str().to_string()),
    }
}

fn parse_id(body: &Value, at: &str) -> Result<ResourceId, String> {
    let raw = body
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{at}: missing field `id`"))?;
    ResourceId::parse(raw).map_err(|e| format!("{at}.id: {e}"))
}

fn same_name(conn: &Value, name: &str) -> bool {
    conn.get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| n.eq_ignore_ascii_case(name))
}

fn render_registry(entry: &RegistryEntry) -> Value {
    let mut body = entry.body.clone();
    if let Some(props) = body.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(
            "privateEndpointConnections".into(),
            Value::Array(entry.connections.clone()),
        );
    }
    body
}

fn system_data(by: &str, at: &str) -> Value {
    json!({
        "createdBy": by, "createdByType": "Application", "createdAt": at,
        "lastModifiedBy": by, "lastModifiedByType": "Application", "lastModifiedAt": at
    })
}

/// Fills what ARM always returns (name, type, systemData, provisioningState) and drops the az CLI's
/// `resourceGroup`, which ARM does not send.
fn normalize(body: &mut Value, id: &ResourceId, ty: &str, created: &str) {
    let Some(obj) = body.as_object_mut() else {
        return;
    };
    obj.remove("resourceGroup");
    obj.entry("name").or_insert_with(|| json!(id.name()));
    obj.entry("type").or_insert_with(|| json!(ty));
    let props = obj.entry("properties").or_insert_with(|| json!({}));
    if !props.is_object() {
        *props = json!({});
    }
    let created_at = props
        .get("creationDate")
        .and_then(Value::as_str)
        .unwrap_or(created)
        .to_string();
    if let Some(p) = props.as_object_mut() {
        p.entry("provisioningState")
            .or_insert_with(|| json!("Succeeded"));
        p.remove("resourceGroup");
    }
    if !obj.get("systemData").is_some_and(Value::is_object) {
        obj.insert("systemData".into(), system_data(SEEDER, &created_at));
    }
}

/// Marks a change by the caller in `systemData`.
fn touch(body: &mut Value) {
    let now = now_rfc3339();
    if let Some(sd) = body.get_mut("systemData").and_then(Value::as_object_mut) {
        sd.insert("lastModifiedBy".into(), json!(CALLER));
        sd.insert("lastModifiedByType".into(), json!("Application"));
        sd.insert("lastModifiedAt".into(), json!(now));
    }
}

/// Sets `properties.provisioningState`; returns the previous value (`Null` when absent).
fn set_provisioning(body: &mut Value, state: &str) -> Value {
    match body.get_mut("properties").and_then(Value::as_object_mut) {
        Some(props) => props
            .insert("provisioningState".into(), json!(state))
            .unwrap_or(Value::Null),
        None => Value::Null,
    }
}

/// Read-only registry properties: ARM ignores them in a PATCH.
const READ_ONLY: &[&str] = &[
    "loginServer",
    "creationDate",
    "provisioningState",
    "status",
    "privateEndpointConnections",
    "dataEndpointHostNames",
];

fn one_of(value: &Value, at: &str, allowed: &[&str]) -> Result<Value, ArmError> {
    let s = value.as_str().ok_or_else(|| {
        ArmError::invalid_content(format!(
            "{at}: expected a string, one of {}",
            allowed.join(", ")
        ))
    })?;
    allowed
        .iter()
        .find(|a| a.eq_ignore_ascii_case(s))
        .map(|a| json!(a))
        .ok_or_else(|| {
            ArmError::invalid_content(format!("{at}: `{s}` is not one of {}", allowed.join(", ")))
        })
}

/// Checks a `RegistryUpdateParameters` body and returns it with the sandbox's canonical values
/// (enum case, `networkRuleSet` complete, read-only properties dropped).
pub(crate) fn validate_registry_patch(
    patch: &Value,
    current_sku: &str,
    registry: &str,
) -> Result<Value, ArmError> {
    let obj = patch
        .as_object()
        .ok_or_else(|| ArmError::invalid_content("The request content was invalid and could not be deserialized: expected a JSON object with `properties`."))?;
    let mut out = Map::new();
    if let Some(tags) = obj.get("tags") {
        let valid = tags
            .as_object()
            .is_some_and(|t| t.values().all(Value::is_string));
        if !valid {
            return Err(ArmError::invalid_content(
                "tags: expected an object of string values",
            ));
        }
        out.insert("tags".into(), tags.clone());
    }
    if let Some(sku) = obj.get("sku") {
        let name = one_of(
            sku.get("name").unwrap_or(&Value::Null),
            "sku.name",
            &["Basic", "Standard", "Premium"],
        )?;
        out.insert("sku".into(), json!({"name": name, "tier": name}));
    }
    if let Some(identity) = obj.get("identity") {
        out.insert("identity".into(), identity.clone());
    }
    let mut props_out = Map::new();
    match obj.get("properties") {
        None | Some(Value::Null) => {}
        Some(Value::Object(props)) => {
            for (key, value) in props {
                let at = format!("properties.{key}");
                let v = match key.as_str() {
                    k if READ_ONLY.contains(&k) => continue,
                    "publicNetworkAccess" => one_of(value, &at, &["Enabled", "Disabled"])?,
                    "networkRuleBypassOptions" => one_of(value, &at, &["AzureServices", "None"])?,
                    "networkRuleBypassAllowedForTasks"
                    | "adminUserEnabled"
                    | "anonymousPullEnabled"
                    | "dataEndpointEnabled" => {
                        if !value.is_boolean() {
                            return Err(ArmError::invalid_content(format!(
                                "{at}: expected true or false"
                            )));
                        }
                        value.clone()
                    }
                    "networkRuleSet" => validate_rule_set(value)?,
                    _ => value.clone(),
                };
                props_out.insert(key.clone(), v);
            }
        }
        Some(_) => return Err(ArmError::invalid_content("properties: expected an object")),
    }
    let sku = out
        .get("sku")
        .and_then(|s| s.get("name"))
        .and_then(Value::as_str)
        .unwrap_or(current_sku);
    let restricts = props_out
        .get("publicNetworkAccess")
        .is_some_and(|v| v == "Disabled")
        || props_out.get("networkRuleSet").is_some_and(|n| {
            n.get("defaultAction").is_some_and(|d| d == "Deny")
                || n.get("ipRules")
                    .and_then(Value::as_array)
                    .is_some_and(|r| !r.is_empty())
        });
    if restricts && !sku.eq_ignore_ascii_case("Premium") {
        return Err(ArmError::bad_request(format!(
            "Registry '{registry}' has the {sku} SKU: network rules and disabled public network access need the Premium SKU. Upgrade the registry to Premium first."
        )));
    }
    out.insert("properties".into(), Value::Object(props_out));
    Ok(Value::Object(out))
}

fn validate_rule_set(value: &Value) -> Result<Value, ArmError> {
    let at = "properties.networkRuleSet";
    let obj = value
        .as_object()
        .ok_or_else(|| ArmError::invalid_content(format!("{at}: expected an object")))?;
    let default_action = match obj.get("defaultAction") {
        None | Some(Value::Null) => {
            return Err(ArmError::invalid_content(format!(
                "{at}.defaultAction: required; send the whole networkRuleSet (defaultAction and every ipRule)"
            )));
        }
        Some(v) => one_of(v, &format!("{at}.defaultAction"), &["Allow", "Deny"])?,
    };
    let mut rules = Vec::new();
    match obj.get("ipRules") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) => {
            if list.len() > MAX_IP_RULES {
                return Err(ArmError::bad_request(format!(
                    "{at}.ipRules: {} rules given; a registry holds at most {MAX_IP_RULES}",
                    list.len()
                )));
            }
            for (i, rule) in list.iter().enumerate() {
                let rat = format!("{at}.ipRules[{i}]");
                let v = rule.get("value").and_then(Value::as_str).ok_or_else(|| {
                    ArmError::invalid_content(format!(
                        "{rat}.value: required, an IPv4 address or CIDR range"
                    ))
                })?;
                if v.parse::<Ipv4Addr>().is_err() && v.parse::<ipnet::Ipv4Net>().is_err() {
                    return Err(ArmError::invalid_content(format!(
                        "{rat}.value: `{v}` is not an IPv4 address or CIDR range"
                    )));
                }
                let action = match rule.get("action") {
                    None | Some(Value::Null) => json!("Allow"),
                    Some(a) => one_of(a, &format!("{rat}.action"), &["Allow"])?,
                };
                rules.push(json!({"action": action, "value": v}));
            }
        }
        Some(_) => {
            return Err(ArmError::invalid_content(format!(
                "{at}.ipRules: expected an array"
            )));
        }
    }
    Ok(json!({"defaultAction": default_action, "ipRules": rules}))
}

/// ARM PATCH: tags, sku and identity replaced; properties merged key by key (objects deeply),
/// except `networkRuleSet`, which is replaced whole.
pub(crate) fn apply_registry_patch(body: &mut Value, patch: &Value) {
    let Some(obj) = body.as_object_mut() else {
        return;
    };
    for key in ["tags", "sku", "identity"] {
        if let Some(v) = patch.get(key) {
            obj.insert(key.into(), v.clone());
        }
    }
    let Some(props) = patch.get("properties").and_then(Value::as_object) else {
        return;
    };
    let target = obj.entry("properties").or_insert_with(|| json!({}));
    let Some(target) = target.as_object_mut() else {
        return;
    };
    for (key, value) in props {
        match (target.get_mut(key), value) {
            (Some(existing @ Value::Object(_)), Value::Object(_)) if key != "networkRuleSet" => {
                merge(existing, value)
            }
            _ => {
                target.insert(key.clone(), value.clone());
            }
        }
    }
}

fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                match t.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        t.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

/// Checks a connection PUT body against the current connection; returns the new
/// `privateLinkServiceConnectionState`.
pub(crate) fn validate_connection_put(body: &Value, current: &Value) -> Result<Value, ArmError> {
    let state = body
        .get("properties")
        .and_then(|p| p.get("privateLinkServiceConnectionState"))
        .filter(|s| s.is_object())
        .ok_or_else(|| ArmError::invalid_content("properties.privateLinkServiceConnectionState: required, e.g. {\"status\": \"Approved\", \"description\": \"...\"}"))?;
    let status = state
        .get("status")
        .and_then(Value::as_str)
        .ok_or_else(|| ArmError::invalid_content("properties.privateLinkServiceConnectionState.status: required, `Approved` or `Rejected`"))?;
    let new_status = ConnectionStatus::parse(status);
    if !matches!(
        new_status,
        ConnectionStatus::Approved | ConnectionStatus::Rejected
    ) {
        return Err(ArmError::bad_request(format!(
            "properties.privateLinkServiceConnectionState.status: `{status}` cannot be set; a registry owner sets `Approved` or `Rejected`"
        )));
    }
    let description = match state.get("description") {
        None | Some(Value::Null) => current
            .pointer("/properties/privateLinkServiceConnectionState/description")
            .cloned()
            .unwrap_or_else(|| json!("")),
        Some(Value::String(d)) => json!(d),
        Some(_) => {
            return Err(ArmError::invalid_content(
                "properties.privateLinkServiceConnectionState.description: expected a string",
            ));
        }
    };
    let actions_required = match state.get("actionsRequired") {
        None | Some(Value::Null) => json!("None"),
        Some(v) => one_of(
            v,
            "properties.privateLinkServiceConnectionState.actionsRequired",
            &["None", "Recreate"],
        )?,
    };
    if let Some(pe) = body.pointer("/properties/privateEndpoint/id") {
        let given = pe.as_str().and_then(|s| ResourceId::parse(s).ok());
        let existing = current
            .pointer("/properties/privateEndpoint/id")
            .and_then(Value::as_str)
            .and_then(|s| ResourceId::parse(s).ok());
        if given.is_none() || (existing.is_some() && given != existing) {
            return Err(ArmError::bad_request(format!(
                "properties.privateEndpoint.id: `{pe}` is not this connection's private endpoint; omit it or send the connection's own"
            )));
        }
    }
    let current_status = current
        .pointer("/properties/privateLinkServiceConnectionState/status")
        .and_then(Value::as_str)
        .map_or(ConnectionStatus::Pending, ConnectionStatus::parse);
    match (&current_status, &new_status) {
        // The wording Azure answers for this (MicrosoftDocs/azure-docs PR #86823).
        (ConnectionStatus::Rejected, ConnectionStatus::Approved) => {
            return Err(ArmError::bad_request(
                "Approving rejected private endpoint connections is not supported.",
            ));
        }
        (ConnectionStatus::Disconnected, _) => {
            return Err(ArmError::bad_request(
                "The private endpoint connection is Disconnected (its endpoint is gone); it can only be deleted.",
            ));
        }
        _ => {}
    }
    Ok(
        json!({"status": new_status.as_str(), "description": description, "actionsRequired": actions_required}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const REG: &str = "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ContainerRegistry/registries/reg1";

    fn estate() -> Value {
        json!({"registries": [{
            "id": REG, "sku": {"name": "Premium"}, "location": "westeurope",
            "properties": {"networkRuleSet": {"defaultAction": "Allow", "ipRules": []}, "policies": {"exportPolicy": {"status": "enabled"}, "quarantinePolicy": {"status": "disabled"}},
              "privateEndpointConnections": [
                {"id": format!("{REG}/privateEndpointConnections/c1"), "properties": {"privateEndpoint": {"id": "/subscriptions/s2/resourceGroups/net/providers/Microsoft.Network/privateEndpoints/pe1"}, "privateLinkServiceConnectionState": {"status": "Pending", "description": "please"}}}
              ]}
        }]})
    }

    #[test]
    fn loads_and_fills_what_arm_always_returns() {
        let world = World::from_estate(estate()).unwrap();
        let reg = world.get_registry("S1", "RG1", "REG1").unwrap();
        assert_eq!(reg["name"], "reg1");
        assert_eq!(reg["type"], REGISTRY_TYPE);
        assert_eq!(reg["properties"]["provisioningState"], "Succeeded");
        assert!(reg["systemData"]["createdAt"].is_string());
        assert_eq!(
            reg["properties"]["privateEndpointConnections"][0]["name"],
            "c1"
        );
        assert_eq!(
            reg["properties"]["privateEndpointConnections"][0]["type"],
            CONNECTION_TYPE
        );
    }

    #[test]
    fn estate_errors_name_the_field() {
        let mut bad = estate();
        bad["registries"][0]["properties"]["privateEndpointConnections"][0]["id"] = json!(
            "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.ContainerRegistry/registries/other/privateEndpointConnections/c1"
        );
        let err = World::from_estate(bad).unwrap_err();
        assert!(
            err.starts_with("registries[0].properties.privateEndpointConnections[0].id:"),
            "{err}"
        );
        let mut dup = estate();
        let first = dup["registries"][0].clone();
        dup["registries"].as_array_mut().unwrap().push(first);
        assert!(
            World::from_estate(dup)
                .unwrap_err()
                .contains("listed twice")
        );
        let not_registry = json!([{"id": "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/x"}]);
        assert!(
            World::from_estate(not_registry)
                .unwrap_err()
                .contains("is not a registry id")
        );
    }

    #[test]
    fn patch_replaces_rule_set_merges_objects_and_checks_fields() {
        let patch = validate_registry_patch(
            &json!({"properties": {"networkRuleSet": {"defaultAction": "deny", "ipRules": [{"value": "203.0.113.0/24"}]}, "policies": {"exportPolicy": {"status": "disabled"}}, "loginServer": "x"}}),
            "Premium",
            "reg1",
        )
        .unwrap();
        let mut body = json!({"properties": {"networkRuleSet": {"defaultAction": "Allow", "ipRules": [{"value": "1.2.3.4", "action": "Allow"}], "virtualNetworkRules": [{}]},
            "policies": {"exportPolicy": {"status": "enabled"}, "quarantinePolicy": {"status": "disabled"}}, "loginServer": "reg1.azurecr.io"}});
        apply_registry_patch(&mut body, &patch);
        assert_eq!(
            body["properties"]["networkRuleSet"],
            json!({"defaultAction": "Deny", "ipRules": [{"action": "Allow", "value": "203.0.113.0/24"}]})
        );
        assert_eq!(
            body["properties"]["policies"]["quarantinePolicy"]["status"],
            "disabled"
        );
        assert_eq!(
            body["properties"]["policies"]["exportPolicy"]["status"],
            "disabled"
        );
        assert_eq!(body["properties"]["loginServer"], "reg1.azurecr.io");

        for (bad, expect) in [
            (
                json!({"properties": {"networkRuleSet": {"ipRules": []}}}),
                "networkRuleSet.defaultAction: required",
            ),
            (
                json!({"properties": {"networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"value": "nope"}]}}}),
                "ipRules[0].value",
            ),
            (
                json!({"properties": {"publicNetworkAccess": "Off"}}),
                "properties.publicNetworkAccess",
            ),
            (
                json!({"properties": {"networkRuleBypassAllowedForTasks": "yes"}}),
                "networkRuleBypassAllowedForTasks",
            ),
            (json!([]), "JSON object"),
        ] {
            let err = validate_registry_patch(&bad, "Premium", "reg1").unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert!(err.message.contains(expect), "{bad}: {}", err.message);
        }
        let err = validate_registry_patch(
            &json!({"properties": {"publicNetworkAccess": "Disabled"}}),
            "Standard",
            "reg1",
        )
        .unwrap_err();
        assert!(err.message.contains("Premium"), "{}", err.message);
    }

    #[test]
    fn connection_put_rules() {
        let pending = json!({"properties": {"privateEndpoint": {"id": "/subscriptions/s2/resourceGroups/net/providers/Microsoft.Network/privateEndpoints/pe1"}, "privateLinkServiceConnectionState": {"status": "Pending", "description": "please"}}});
        let approve =
            json!({"properties": {"privateLinkServiceConnectionState": {"status": "approved"}}});
        let state = validate_connection_put(&approve, &pending).unwrap();
        assert_eq!(
            state,
            json!({"status": "Approved", "description": "please", "actionsRequired": "None"})
        );
        let rejected =
            json!({"properties": {"privateLinkServiceConnectionState": {"status": "Rejected"}}});
        let err = validate_connection_put(&approve, &rejected).unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (StatusCode::BAD_REQUEST, "BadRequest")
        );
        assert!(validate_connection_put(&rejected, &rejected).is_ok());
        for (bad, expect) in [
            (json!({}), "privateLinkServiceConnectionState: required"),
            (
                json!({"properties": {"privateLinkServiceConnectionState": {}}}),
                "status: required",
            ),
            (
                json!({"properties": {"privateLinkServiceConnectionState": {"status": "Pending"}}}),
                "cannot be set",
            ),
            (
                json!({"properties": {"privateLinkServiceConnectionState": {"status": "Approved", "actionsRequired": "Reboot"}}}),
                "actionsRequired",
            ),
            (
                json!({"properties": {"privateEndpoint": {"id": "/subscriptions/s9/resourceGroups/x/providers/Microsoft.Network/privateEndpoints/other"}, "privateLinkServiceConnectionState": {"status": "Approved"}}}),
                "privateEndpoint.id",
            ),
        ] {
            let err = validate_connection_put(&bad, &pending).unwrap_err();
            assert!(err.message.contains(expect), "{bad}: {}", err.message);
        }
    }

    #[test]
    fn lro_applies_only_after_its_in_progress_polls() {
        let mut world = World::from_estate(estate()).unwrap();
        let conn_id = ResourceId::parse(&format!("{REG}/privateEndpointConnections/c1")).unwrap();
        let settings = LroSettings::new(2, 1);
        let body = json!({"properties": {"privateLinkServiceConnectionState": {"status": "Approved", "description": "ok"}}});
        let preview = world
            .begin_put_connection(("s1", "rg1", "reg1", "c1"), &body, "op1", false, settings)
            .unwrap();
        assert_eq!(preview["properties"]["provisioningState"], "Updating");
        let status = |w: &World| {
            w.connection_json(conn_id.as_str()).unwrap()["properties"]["privateLinkServiceConnectionState"]["status"].clone()
        };
        for _ in 0..2 {
            assert_eq!(
                world.poll("OP1", &conn_id, "/x").unwrap().state,
                LroState::InProgress
            );
            assert_eq!(status(&world), "Pending");
        }
        assert_eq!(
            world.poll("op1", &conn_id, "/x").unwrap().state,
            LroState::Succeeded
        );
        assert_eq!(status(&world), "Approved");
        assert_eq!(
            world.connection_json(conn_id.as_str()).unwrap()["properties"]["provisioningState"],
            "Succeeded"
        );
        // a status URL under another resource does not reveal the operation
        let other = ResourceId::parse(&format!("{REG}/privateEndpointConnections/c2")).unwrap();
        assert_eq!(
            world.poll("op1", &other, "/x").unwrap_err().status,
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn failed_lro_changes_nothing() {
        let mut world = World::from_estate(estate()).unwrap();
        let reg_id = ResourceId::parse(REG).unwrap();
        let before = world.registry_json(REG).unwrap();
        let patch = json!({"properties": {"publicNetworkAccess": "Disabled"}});
        world
            .begin_patch_registry(
                ("s1", "rg1", "reg1"),
                &patch,
                "op2",
                true,
                LroSettings::new(0, 1),
            )
            .unwrap();
        let view = world.poll("op2", &reg_id, "/x").unwrap();
        assert_eq!(view.state, LroState::Failed);
        assert_eq!(view.body["error"]["code"], "InternalServerError");
        assert_eq!(world.registry_json(REG).unwrap(), before);
    }

    #[test]
    fn reads_check_subscription_group_and_name() {
        let world = World::from_estate(estate()).unwrap();
        assert_eq!(
            world.get_registry("s9", "rg1", "reg1").unwrap_err().code,
            "AuthorizationFailed"
        );
        assert_eq!(
            world.get_registry("s1", "nope", "reg1").unwrap_err().code,
            "ResourceGroupNotFound"
        );
        assert_eq!(
            world.get_registry("s1", "rg1", "nope").unwrap_err().code,
            "ResourceNotFound"
        );
        assert_eq!(
            world
                .get_connection("s1", "rg1", "reg1", "nope")
                .unwrap_err()
                .code,
            "ResourceNotFound"
        );
        assert_eq!(
            world
                .get_private_endpoint("s2", "net", "pe1")
                .unwrap_err()
                .code,
            "AuthorizationFailed"
        );
        assert_eq!(world.list_registries("s1", None).unwrap().len(), 1);
        assert_eq!(world.subscriptions_json().len(), 1);
    }
}
