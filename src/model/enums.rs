//! String enums of the ARM contract. ARM and the az CLI agree on spelling but not always on case,
//! and new values appear over time, so parsing is case-insensitive and keeps unknown values
//! (decisions on an unknown value fail closed).

/// Declares an enum of ARM string values with a catch-all `Other(String)` variant.
macro_rules! arm_string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)+
            /// A value this version of linkguard does not know, kept as ARM sent it.
            Other(String),
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(s) => s,
                }
            }
            pub fn parse(s: &str) -> Self {
                $(if s.eq_ignore_ascii_case($text) { return Self::$variant; })+
                Self::Other(s.to_string())
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                Ok(Self::parse(&s))
            }
        }
    };
}

arm_string_enum!(
    /// `privateLinkServiceConnectionState.status`.
    ConnectionStatus { Pending = "Pending", Approved = "Approved", Rejected = "Rejected", Disconnected = "Disconnected" }
);

arm_string_enum!(
    /// `publicNetworkAccess`.
    PublicNetworkAccess { Enabled = "Enabled", Disabled = "Disabled" }
);

arm_string_enum!(
    /// `networkRuleSet.defaultAction`.
    DefaultAction { Allow = "Allow", Deny = "Deny" }
);

arm_string_enum!(
    /// `networkRuleBypassOptions`: whether trusted Azure services may bypass the network rules.
    BypassOptions { AzureServices = "AzureServices", None = "None" }
);

arm_string_enum!(
    /// `provisioningState` of registries and connections.
    ProvisioningState {
        Creating = "Creating", Updating = "Updating", Deleting = "Deleting",
        Succeeded = "Succeeded", Failed = "Failed", Canceled = "Canceled",
    }
);
