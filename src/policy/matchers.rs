//! Matching primitives: case-insensitive name globs, subnet containment on id segments, IP ranges.

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use ipnet::IpNet;

use crate::model::ResourceId;

/// Case-insensitive globs over names (`rg-prod-*`, `acr?`).
#[derive(Clone, Debug)]
pub struct NameGlobs {
    set: GlobSet,
    patterns: Vec<String>,
}

impl NameGlobs {
    /// Compiles the patterns; on error returns the index of the bad pattern.
    pub fn new<'a>(
        patterns: impl IntoIterator<Item = &'a str>,
    ) -> Result<Self, (usize, globset::Error)> {
        let mut builder = GlobSetBuilder::new();
        let mut kept = Vec::new();
        for (i, p) in patterns.into_iter().enumerate() {
            let glob = GlobBuilder::new(p.trim())
                .case_insensitive(true)
                .literal_separator(true)
                .build()
                .map_err(|e| (i, e))?;
            builder.add(glob);
            kept.push(p.trim().to_string());
        }
        let set = builder.build().map_err(|e| (0, e))?;
        Ok(Self {
            set,
            patterns: kept,
        })
    }
    /// The first pattern that matches `name`.
    pub fn first_match(&self, name: &str) -> Option<&str> {
        let idx = self.set.matches(name).into_iter().min()?;
        self.patterns.get(idx).map(String::as_str)
    }
    pub fn is_match(&self, name: &str) -> bool {
        self.set.is_match(name)
    }
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// Subnet and VNet ids; a subnet matches when it equals a listed subnet or lies in a listed VNet,
/// compared segment by segment (never by substring: `hub` does not contain `hub2`'s subnets).
#[derive(Clone, Debug)]
pub struct SubnetSet {
    ids: Vec<ResourceId>,
}

impl SubnetSet {
    pub fn new(ids: Vec<ResourceId>) -> Self {
        Self { ids }
    }
    pub fn containing(&self, subnet: &ResourceId) -> Option<&ResourceId> {
        self.ids.iter().find(|id| subnet.is_within(id))
    }
    pub fn ids(&self) -> &[ResourceId] {
        &self.ids
    }
}

/// An IP address or CIDR range as ARM's `ipRules[].value` or the policy writes it.
pub fn parse_ip_range(text: &str) -> Option<IpNet> {
    let text = text.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Some(net.trunc());
    }
    text.parse::<std::net::IpAddr>().ok().map(IpNet::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_case_insensitive_and_anchored() {
        let g = NameGlobs::new(["rg-prod-*", "acr?"]).unwrap();
        for (name, hit) in [
            ("RG-PROD-weu", true),
            ("rg-prod-", true),
            ("xrg-prod-1", false),
            ("acr1", true),
            ("acr12", false),
            ("ACRX", true),
        ] {
            assert_eq!(g.is_match(name), hit, "{name}");
        }
        assert_eq!(g.first_match("acr1"), Some("acr?"));
    }

    #[test]
    fn ip_ranges() {
        let allowed = parse_ip_range("203.0.113.0/24").unwrap();
        for (rule, inside) in [
            ("203.0.113.7", true),
            ("203.0.113.0/25", true),
            ("203.0.112.0/23", false),
            ("198.51.100.1", false),
        ] {
            let net = parse_ip_range(rule).unwrap();
            assert_eq!(allowed.contains(&net), inside, "{rule}");
        }
        assert!(parse_ip_range("300.1.1.1").is_none());
        assert!(parse_ip_range("10.0.0.0/33").is_none());
    }
}
