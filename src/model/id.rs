//! ARM resource ids: parsed once, displayed exactly as ARM gave them, compared case-insensitively
//! segment by segment (ARM treats ids as case-insensitive; `resourcegroups` casing varies by producer).

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A parsed ARM resource id such as
/// `/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{type}/{name}]...`.
#[derive(Clone, Debug)]
pub struct ResourceId {
    raw: String,
    /// `(key, value)` pairs after the leading slash: `("subscriptions", s)`, `("resourceGroups", rg)`,
    /// then one pair per type/name level below the provider namespace.
    subscription: String,
    resource_group: Option<String>,
    provider: Option<String>,
    /// Type/name levels below the provider: `[("registries", "r"), ("privateEndpointConnections", "c")]`.
    levels: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid ARM resource id `{id}`: {problem}; expected /subscriptions/{{id}}[/resourceGroups/{{name}}][/providers/{{namespace}}/{{type}}/{{name}}...]"
)]
pub struct ResourceIdError {
    pub id: String,
    pub problem: &'static str,
}

impl ResourceId {
    pub fn parse(raw: &str) -> Result<Self, ResourceIdError> {
        let err = |problem| ResourceIdError {
            id: raw.to_string(),
            problem,
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(err("it is empty"));
        }
        let body = trimmed
            .strip_prefix('/')
            .ok_or_else(|| err("it must start with `/`"))?;
        let body = body.strip_suffix('/').unwrap_or(body);
        let parts: Vec<&str> = body.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(err("it has an empty segment"));
        }
        // ARM names never start or end with whitespace; accepting one made an id cut from an event
        // (`…/registries/x /privateEndpointConnections/c`) differ from itself re-parsed.
        if parts.iter().any(|p| p.trim() != *p) {
            return Err(err("a segment starts or ends with whitespace"));
        }
        let mut rest = parts.as_slice();
        let subscription = match rest {
            [key, sub, tail @ ..] if key.eq_ignore_ascii_case("subscriptions") => {
                rest = tail;
                (*sub).to_string()
            }
            _ => return Err(err("it must start with /subscriptions/{id}")),
        };
        let mut resource_group = None;
        if let [key, rg, tail @ ..] = rest
            && key.eq_ignore_ascii_case("resourceGroups")
        {
            resource_group = Some((*rg).to_string());
            rest = tail;
        }
        let mut provider = None;
        let mut levels = Vec::new();
        match rest {
            [] => {}
            [key, ns, tail @ ..] if key.eq_ignore_ascii_case("providers") => {
                provider = Some((*ns).to_string());
                if tail.is_empty() || tail.len() % 2 != 0 {
                    return Err(err(
                        "the part after the provider namespace must be type/name pairs",
                    ));
                }
                for pair in tail.chunks(2) {
                    if let [t, n] = pair {
                        levels.push(((*t).to_string(), (*n).to_string()));
                    }
                }
            }
            [key, ..] if key.eq_ignore_ascii_case("resourceGroups") => {
                return Err(err("the resource group name is missing"));
            }
            _ => {
                return Err(err(
                    "expected `providers` after the subscription or resource group",
                ));
            }
        }
        Ok(Self {
            raw: trimmed.to_string(),
            subscription,
            resource_group,
            provider,
            levels,
        })
    }

    /// The id exactly as it was given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.raw
    }
    pub fn subscription(&self) -> &str {
        &self.subscription
    }
    pub fn resource_group(&self) -> Option<&str> {
        self.resource_group.as_deref()
    }
    /// Provider namespace, e.g. `Microsoft.ContainerRegistry`.
    pub fn provider(&self) -> Option<&str> {
        self.provider.as_deref()
    }
    /// Full resource type, e.g. `Microsoft.ContainerRegistry/registries/privateEndpointConnections`.
    pub fn resource_type(&self) -> Option<String> {
        let ns = self.provider.as_deref()?;
        let mut out = ns.to_string();
        for (t, _) in &self.levels {
            out.push('/');
            out.push_str(t);
        }
        Some(out)
    }
    /// True when the full resource type equals `ty`, ignoring case.
    pub fn is_type(&self, ty: &str) -> bool {
        self.resource_type()
            .is_some_and(|t| t.eq_ignore_ascii_case(ty))
    }
    /// Name of the last level (the resource's own name); the resource group or subscription for
    /// ids that stop there.
    pub fn name(&self) -> &str {
        match self.levels.last() {
            Some((_, n)) => n,
            None => self.resource_group.as_deref().unwrap_or(&self.subscription),
        }
    }
    /// The enclosing resource (one type/name level up); `None` for top-level resources and above.
    pub fn parent(&self) -> Option<ResourceId> {
        if self.levels.len() < 2 {
            return None;
        }
        let mut parent = self.clone();
        parent.levels.pop();
        parent.raw = parent.render();
        Some(parent)
    }
    /// The ancestor (or self) whose deepest level has type `ty` (e.g. `registries`), ignoring case.
    pub fn ancestor_of_type(&self, provider: &str, ty: &str) -> Option<ResourceId> {
        if !self
            .provider
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case(provider))
        {
            return None;
        }
        let pos = self
            .levels
            .iter()
            .position(|(t, _)| t.eq_ignore_ascii_case(ty))?;
        let mut out = self.clone();
        out.levels.truncate(pos + 1);
        if out.levels.len() != self.levels.len() {
            out.raw = out.render();
        }
        Some(out)
    }
    /// A child resource id: `self/{ty}/{name}`.
    pub fn child(&self, ty: &str, name: &str) -> ResourceId {
        let mut out = self.clone();
        out.levels.push((ty.to_string(), name.to_string()));
        out.raw = format!("{}/{}/{}", self.raw, ty, name);
        out
    }
    /// Segment-wise prefix test: `self` is `other` or lies inside it. A VNet id contains its own
    /// subnets, never those of a VNet whose name merely starts the same (`hub` vs `hub2`).
    pub fn is_within(&self, other: &ResourceId) -> bool {
        let mut a = self.key_segments();
        other
            .key_segments()
            .all(|y| a.next().is_some_and(|x| x.eq_ignore_ascii_case(y)))
    }

    fn render(&self) -> String {
        let mut out = format!("/subscriptions/{}", self.subscription);
        if let Some(rg) = &self.resource_group {
            out.push_str("/resourceGroups/");
            out.push_str(rg);
        }
        if let Some(ns) = &self.provider {
            out.push_str("/providers/");
            out.push_str(ns);
            for (t, n) in &self.levels {
                out.push('/');
                out.push_str(t);
                out.push('/');
                out.push_str(n);
            }
        }
        out
    }

    /// The canonical segments (markers lower-case, values as given): the identity used for
    /// equality, ordering and hashing, compared ASCII-case-insensitively. An iterator rather than a
    /// lower-cased copy, so comparing ids allocates nothing (the sandbox and the engine compare
    /// ids in loops over thousands of registries).
    fn key_segments(&self) -> impl Iterator<Item = &str> + '_ {
        let head = ["subscriptions", self.subscription.as_str()];
        let group = self
            .resource_group
            .as_deref()
            .into_iter()
            .flat_map(|rg| ["resourcegroups", rg]);
        let provider = self.provider.as_deref().into_iter().flat_map(move |ns| {
            ["providers", ns].into_iter().chain(
                self.levels
                    .iter()
                    .flat_map(|(t, n)| [t.as_str(), n.as_str()]),
            )
        });
        head.into_iter().chain(group).chain(provider)
    }
}

/// Orders two segments as their ASCII-lower-cased forms would (bytewise, like `String`).
fn segment_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

impl PartialEq for ResourceId {
    fn eq(&self, other: &Self) -> bool {
        let mut a = self.key_segments();
        let mut b = other.key_segments();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => {}
                _ => return false,
            }
        }
    }
}
impl Eq for ResourceId {}

impl Hash for ResourceId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut count = 0usize;
        for segment in self.key_segments() {
            for b in segment.bytes() {
                state.write_u8(b.to_ascii_lowercase());
            }
            // Terminator, so ("ab", "c") and ("a", "bc") hash apart (as `str` hashing does).
            state.write_u8(0xff);
            count += 1;
        }
        state.write_usize(count);
    }
}

impl PartialOrd for ResourceId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ResourceId {
    /// Lexicographic over the lower-cased segments (a prefix orders first).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let mut a = self.key_segments();
        let mut b = other.key_segments();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return std::cmp::Ordering::Equal,
                (None, Some(_)) => return std::cmp::Ordering::Less,
                (Some(_), None) => return std::cmp::Ordering::Greater,
                (Some(x), Some(y)) => match segment_cmp(x, y) {
                    std::cmp::Ordering::Equal => {}
                    other => return other,
                },
            }
        }
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

impl FromStr for ResourceId {
    type Err = ResourceIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ResourceId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.raw)
    }
}

impl<'de> Deserialize<'de> for ResourceId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REG: &str = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/myResourceGroup/providers/Microsoft.ContainerRegistry/registries/myRegistry";

    #[test]
    fn segments_are_exposed() {
        let conn =
            ResourceId::parse(&format!("{REG}/privateEndpointConnections/myConnection")).unwrap();
        assert_eq!(conn.subscription(), "00000000-0000-0000-0000-000000000000");
        assert_eq!(conn.resource_group(), Some("myResourceGroup"));
        assert_eq!(conn.provider(), Some("Microsoft.ContainerRegistry"));
        assert_eq!(
            conn.resource_type().as_deref(),
            Some("Microsoft.ContainerRegistry/registries/privateEndpointConnections")
        );
        assert_eq!(conn.name(), "myConnection");
        assert_eq!(conn.parent().unwrap().as_str(), REG);
        assert!(conn.parent().unwrap().parent().is_none());
    }

    #[test]
    fn case_insensitive_equality_keeps_display() {
        let a = ResourceId::parse(REG).unwrap();
        let b = ResourceId::parse(
            &REG.to_uppercase()
                .replace("RESOURCEGROUPS", "resourcegroups"),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_ne!(a.to_string(), b.to_string());
        let mut set = std::collections::HashSet::new();
        set.insert(a);
        assert!(set.contains(&b));
    }

    #[test]
    fn ancestor_cuts_after_registry() {
        let op = ResourceId::parse(&format!("{REG}/privateEndpointConnections/c1")).unwrap();
        let reg = op
            .ancestor_of_type("microsoft.containerregistry", "REGISTRIES")
            .unwrap();
        assert_eq!(reg.as_str(), REG);
    }

    #[test]
    fn vnet_contains_its_subnets_but_not_a_longer_name() {
        let vnet = ResourceId::parse(
            "/subscriptions/s/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/hub",
        )
        .unwrap();
        let own = ResourceId::parse("/subscriptions/s/resourceGroups/NET/providers/Microsoft.Network/virtualNetworks/HUB/subnets/pe").unwrap();
        let other = ResourceId::parse("/subscriptions/s/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/hub2/subnets/pe").unwrap();
        assert!(own.is_within(&vnet));
        assert!(!other.is_within(&vnet));
        assert!(!vnet.is_within(&own));
    }

    #[test]
    fn malformed_ids_are_rejected_with_reason() {
        for (bad, why) in [
            ("", "empty"),
            ("subscriptions/s", "start with `/`"),
            ("/subscription/s", "/subscriptions/{id}"),
            ("/subscriptions/s/resourceGroups", "resource group name"),
            ("/subscriptions/s/providers/Microsoft.X", "type/name pairs"),
            (
                "/subscriptions/s/providers/Microsoft.X/things",
                "type/name pairs",
            ),
            ("/subscriptions//resourceGroups/x", "empty segment"),
            (
                "/subscriptions/s/resourceGroups/x /providers/A/b/c",
                "whitespace",
            ),
            ("/subscriptions/s/foo/bar", "providers"),
        ] {
            let err = ResourceId::parse(bad).unwrap_err();
            assert!(err.to_string().contains(why), "{bad}: {err}");
        }
    }

    fn segment() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9._-]{0,11}"
    }

    /// The lower-cased segment vector the comparisons are defined by (what they allocated before).
    fn lowered(id: &ResourceId) -> Vec<String> {
        id.key_segments().map(str::to_ascii_lowercase).collect()
    }

    fn any_id() -> impl Strategy<Value = String> {
        // Few distinct values per position, so equal prefixes and equal ids are common.
        let seg = || proptest::sample::select(vec!["a", "A", "ab", "b", "B1", "b1", "z"]);
        (seg(), proptest::option::of(seg()), 0usize..3, seg(), seg()).prop_map(
            |(s, rg, depth, t, n)| {
                let mut raw = format!("/subscriptions/{s}");
                if let Some(rg) = rg {
                    raw.push_str(&format!("/resourceGroups/{rg}"));
                }
                if depth > 0 {
                    raw.push_str("/providers/Microsoft.X");
                    for _ in 0..depth {
                        raw.push_str(&format!("/{t}/{n}"));
                    }
                }
                raw
            },
        )
    }

    proptest! {
        #[test]
        fn comparisons_agree_with_the_lowered_segments(a in any_id(), b in any_id()) {
            let (x, y) = (ResourceId::parse(&a).unwrap(), ResourceId::parse(&b).unwrap());
            prop_assert_eq!(x == y, lowered(&x) == lowered(&y));
            prop_assert_eq!(x.cmp(&y), lowered(&x).cmp(&lowered(&y)));
            let within = lowered(&x).starts_with(&lowered(&y));
            prop_assert_eq!(x.is_within(&y), within);
            if x == y {
                use std::collections::hash_map::DefaultHasher;
                let h = |id: &ResourceId| { let mut s = DefaultHasher::new(); id.hash(&mut s); s.finish() };
                prop_assert_eq!(h(&x), h(&y));
            }
        }
    }

    proptest! {
        #[test]
        fn display_round_trips(sub in segment(), rg in segment(), name in segment(), child in segment()) {
            let raw = format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}/privateEndpointConnections/{child}");
            let id = ResourceId::parse(&raw).unwrap();
            prop_assert_eq!(id.to_string(), raw.clone());
            let again = ResourceId::parse(&id.to_string()).unwrap();
            prop_assert_eq!(&again, &id);
            prop_assert_eq!(id.parent().unwrap().child("privateEndpointConnections", &child), id);
        }

        #[test]
        fn case_folding_preserves_identity(sub in segment(), rg in segment(), name in segment(), flips in proptest::collection::vec(any::<bool>(), 120)) {
            let raw = format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}");
            let folded: String = raw.chars().zip(flips.iter().cycle()).map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() }).collect();
            let a = ResourceId::parse(&raw).unwrap();
            let b = ResourceId::parse(&folded).unwrap();
            prop_assert_eq!(&a, &b);
            use std::collections::hash_map::DefaultHasher;
            let h = |id: &ResourceId| { let mut s = DefaultHasher::new(); id.hash(&mut s); s.finish() };
            prop_assert_eq!(h(&a), h(&b));
            prop_assert_eq!(b.to_string(), folded);
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = ResourceId::parse(&s);
        }
    }
}
