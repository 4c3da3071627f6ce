//! Azure Storage connection strings (`Key=Value;...`), the subset that names a blob endpoint:
//! `UseDevelopmentStorage=true`, or `AccountName` with `AccountKey` or `SharedAccessSignature`, and
//! `BlobEndpoint` or `DefaultEndpointsProtocol` + `EndpointSuffix`. Keys are case-insensitive.

use azure_core::credentials::Secret;

/// The Azurite / storage emulator account (public, documented by Microsoft).
pub(crate) const DEV_ACCOUNT: &str = "devstoreaccount1";
pub(crate) const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
pub(crate) const DEV_BLOB_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

/// Keys that mark a string as a connection string rather than a directory.
pub(crate) const KNOWN_KEYS: [&str; 10] = [
    "usedevelopmentstorage",
    "developmentstorageproxyuri",
    "defaultendpointsprotocol",
    "accountname",
    "accountkey",
    "sharedaccesssignature",
    "blobendpoint",
    "endpointsuffix",
    "queueendpoint",
    "tableendpoint",
];

/// True when `s` starts with `Key=` for a known connection-string key.
pub(crate) fn looks_like(s: &str) -> bool {
    s.split_once('=')
        .is_some_and(|(k, _)| KNOWN_KEYS.contains(&k.trim().to_ascii_lowercase().as_str()))
}

pub(crate) enum Credential {
    Key { account: String, key: Secret },
    Sas(Secret),
}

pub(crate) struct ConnectionString {
    pub blob_endpoint: String,
    pub credential: Credential,
}

/// Parses a connection string. Errors say what is missing or wrong and never repeat a key or SAS.
pub(crate) fn parse(s: &str) -> Result<ConnectionString, String> {
    let mut use_dev = None;
    let mut protocol = None;
    let mut account = None;
    let mut key = None;
    let mut sas = None;
    let mut blob_endpoint = None;
    let mut suffix = None;
    for part in s.split(';') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((k, v)) = part.split_once('=') else {
            return Err(format!(
                "connection string part `{}` is not Key=Value",
                super::redact::redact_sig(part)
            ));
        };
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "usedevelopmentstorage" => use_dev = Some(v),
            "developmentstorageproxyuri" => {
                return Err("DevelopmentStorageProxyUri is not supported: give the emulator's BlobEndpoint instead".into());
            }
            "defaultendpointsprotocol" => protocol = Some(v),
            "accountname" => account = Some(v),
            "accountkey" => key = Some(v),
            "sharedaccesssignature" => sas = Some(v),
            "blobendpoint" => blob_endpoint = Some(v),
            "endpointsuffix" => suffix = Some(v),
            // Other services' endpoints do not concern the report sink.
            "queueendpoint" | "tableendpoint" | "fileendpoint" => {}
            other => return Err(format!("unknown connection string key `{other}`")),
        }
    }

    if let Some(dev) = use_dev {
        if !dev.eq_ignore_ascii_case("true") {
            return Err(format!(
                "UseDevelopmentStorage must be `true` (got `{dev}`); or drop it and give AccountName/AccountKey/BlobEndpoint"
            ));
        }
        if account.is_some()
            || key.is_some()
            || sas.is_some()
            || blob_endpoint.is_some()
            || protocol.is_some()
        {
            return Err("UseDevelopmentStorage=true stands alone; to point at an emulator elsewhere write DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=...;BlobEndpoint=http://HOST:PORT/devstoreaccount1;".into());
        }
        return Ok(ConnectionString {
            blob_endpoint: DEV_BLOB_ENDPOINT.into(),
            credential: Credential::Key {
                account: DEV_ACCOUNT.into(),
                key: Secret::new(DEV_KEY),
            },
        });
    }

    let credential = match (key, sas) {
        (Some(_), Some(_)) => {
            return Err("give either AccountKey or SharedAccessSignature, not both".into());
        }
        (Some(key), None) => {
            let Some(account) = account.clone().filter(|a| !a.is_empty()) else {
                return Err(
                    "AccountName is missing: it is needed to sign requests with AccountKey".into(),
                );
            };
            match azure_core::base64::decode(&key) {
                Ok(bytes) if !bytes.is_empty() => {}
                _ => return Err("AccountKey is not valid base64 (value not shown): copy the key from the storage account's Access keys".into()),
            }
            Credential::Key {
                account,
                key: Secret::new(key),
            }
        }
        (None, Some(sas)) => {
            let sas = sas.trim_start_matches('?').to_string();
            if !sas
                .to_ascii_lowercase()
                .split('&')
                .any(|p| p.starts_with("sig="))
            {
                return Err(
                    "SharedAccessSignature has no `sig=` parameter: paste the whole SAS token"
                        .into(),
                );
            }
            Credential::Sas(Secret::new(sas))
        }
        (None, None) => {
            return Err("neither AccountKey nor SharedAccessSignature is given: add AccountKey=... (or a SAS), or use a container URL (https, with managed identity)".into());
        }
    };

    let blob_endpoint = match blob_endpoint {
        Some(e) if !e.is_empty() => e,
        _ => {
            let Some(account) = account.filter(|a| !a.is_empty()) else {
                return Err(
                    "AccountName or BlobEndpoint is missing: one is needed to know where blobs go"
                        .into(),
                );
            };
            let protocol = protocol
                .unwrap_or_else(|| "https".into())
                .to_ascii_lowercase();
            if protocol != "https" && protocol != "http" {
                return Err(format!(
                    "DefaultEndpointsProtocol must be https or http (got `{protocol}`)"
                ));
            }
            let suffix = suffix.unwrap_or_else(|| "core.windows.net".into());
            format!("{protocol}://{account}.blob.{suffix}")
        }
    };
    Ok(ConnectionString {
        blob_endpoint,
        credential,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(s: &str) -> String {
        match parse(s) {
            Ok(_) => panic!("expected an error for {s}"),
            Err(e) => e,
        }
    }

    #[test]
    fn development_storage_is_the_well_known_emulator_account() {
        let cs = parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(cs.blob_endpoint, DEV_BLOB_ENDPOINT);
        assert!(
            matches!(cs.credential, Credential::Key { ref account, .. } if account == DEV_ACCOUNT)
        );
        assert!(parse("usedevelopmentstorage=TRUE;").is_ok());
    }

    #[test]
    fn explicit_keys_and_endpoint() {
        let cs = parse(&format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};BlobEndpoint=http://127.0.0.1:41234/devstoreaccount1;"
        ))
        .unwrap();
        assert_eq!(cs.blob_endpoint, "http://127.0.0.1:41234/devstoreaccount1");
        match cs.credential {
            Credential::Key { account, key } => {
                assert_eq!(account, "devstoreaccount1");
                assert_eq!(key.secret(), DEV_KEY);
            }
            Credential::Sas(_) => panic!("expected a key"),
        }
    }

    #[test]
    fn endpoint_is_built_from_account_and_suffix() {
        let cs =
            parse("AccountName=acme;AccountKey=a2V5;EndpointSuffix=core.chinacloudapi.cn").unwrap();
        assert_eq!(cs.blob_endpoint, "https://acme.blob.core.chinacloudapi.cn");
    }

    #[test]
    fn missing_or_bad_keys_are_clear_errors_without_secrets() {
        assert!(
            err("AccountName=acme;BlobEndpoint=https://acme.blob.core.windows.net")
                .contains("neither AccountKey")
        );
        assert!(err("AccountKey=a2V5").contains("AccountName is missing"));
        let e = err("AccountName=acme;AccountKey=not*base64!secret");
        assert!(
            e.contains("not valid base64") && !e.contains("secret"),
            "{e}"
        );
        assert!(err("AccountName=acme;SharedAccessSignature=sv=2025&sp=rw").contains("no `sig=`"));
        assert!(err("UseDevelopmentStorage=false").contains("must be `true`"));
        assert!(err("UseDevelopmentStorage=true;AccountName=x").contains("stands alone"));
        assert!(err("AccountName=acme;Bogus=1").contains("unknown connection string key `bogus`"));
    }

    #[test]
    fn looks_like_recognises_known_keys_only() {
        assert!(looks_like("UseDevelopmentStorage=true"));
        assert!(looks_like("DefaultEndpointsProtocol=http;AccountName=x"));
        assert!(!looks_like("./reports"));
        assert!(!looks_like("dir=weird"));
    }
}
