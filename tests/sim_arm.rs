//! The sandbox speaks ARM: shapes compared with the real examples, paging, api-version and token
//! checks, ARM errors, PATCH / PUT semantics, the test hooks, TLS.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod sim_support;

use linkguard::sim::{Sandbox, SimError, SimOptions, routing};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sim_support::*;

fn quick() -> SimOptions {
    SimOptions {
        lro_polls: 0,
        retry_after_secs: 0,
        ..Default::default()
    }
}

/// Runs an LRO to its end through its `Azure-AsyncOperation` URL; returns the final status body.
async fn finish_async(client: &reqwest::Client, started: &Answer) -> Value {
    let url = started
        .header("azure-asyncoperation")
        .expect("Azure-AsyncOperation header")
        .to_string();
    for _ in 0..10 {
        let status = get(client, &url).await;
        assert_eq!(status.status, StatusCode::OK, "{}", status.body);
        if status.body["status"] != "InProgress" {
            return status.body;
        }
    }
    panic!("operation never finished");
}

#[tokio::test]
async fn tls_ready_line_and_ca_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sandbox::start(
        estate(1),
        SimOptions {
            tls: true,
            cert_dir: Some(dir.path().to_path_buf()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let line: Value = serde_json::from_str(&sim.ready_line()).unwrap();
    let endpoint = line["endpoint"].as_str().unwrap();
    assert!(
        endpoint.starts_with("https://127.0.0.1:") && !endpoint.ends_with(":0"),
        "{endpoint}"
    );
    assert_eq!(endpoint, sim.endpoint());
    let ca = std::path::PathBuf::from(line["ca_cert"].as_str().unwrap());
    assert!(ca.starts_with(dir.path()));
    assert!(
        std::fs::read_to_string(&ca)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );

    let reg = get(
        &https(&ca),
        &url(endpoint, &registry_id("myRegistry0"), ACR),
    )
    .await;
    assert_eq!(reg.status, StatusCode::OK);
    assert_eq!(reg.body["name"], "myRegistry0");
    // localhost is in the certificate too
    let local = endpoint.replace("127.0.0.1", "localhost");
    assert_eq!(
        get(&https(&ca), &url(&local, &registry_id("myRegistry0"), ACR))
            .await
            .status,
        StatusCode::OK
    );
    // a client that does not trust the CA cannot talk to it
    let untrusted = http()
        .get(url(endpoint, &registry_id("myRegistry0"), ACR))
        .bearer_auth("t")
        .send()
        .await;
    assert!(
        untrusted.is_err(),
        "a client without the CA must fail the handshake"
    );

    let plain = Sandbox::start(estate(1), SimOptions::default())
        .await
        .unwrap();
    let line: Value = serde_json::from_str(&plain.ready_line()).unwrap();
    assert!(
        line["endpoint"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert!(line.get("ca_cert").is_none());
}

#[tokio::test]
async fn temporary_cert_dir_is_removed_at_shutdown() {
    let sim = Sandbox::start(
        estate(1),
        SimOptions {
            tls: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let ca = sim.ca_cert_path().unwrap().to_path_buf();
    assert!(ca.exists());
    sim.shutdown().await;
    assert!(!ca.exists());
}

#[tokio::test]
async fn registry_shapes_match_the_arm_examples() {
    let sim = Sandbox::start(estate(2), SimOptions::default())
        .await
        .unwrap();
    let c = http();
    let fixture = fixture_body("acr-2025-11-01.RegistryGet.json", "200");
    let got = get(&c, &url(sim.endpoint(), &registry_id("myRegistry1"), ACR)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("content-type"), Some("application/json"));
    // every field of the real example is served as the estate gave it
    for (key, value) in fixture.as_object().unwrap() {
        if ["id", "name", "sku"].contains(&key.as_str()) {
            continue;
        }
        if key == "properties" {
            for (pk, pv) in value.as_object().unwrap() {
                if pk != "loginServer" {
                    assert_eq!(&got.body["properties"][pk], pv, "properties.{pk}");
                }
            }
        } else {
            assert_eq!(&got.body[key], value, "{key}");
        }
    }
    // and what ARM adds: systemData (common-types v6), type
    for key in [
        "createdBy",
        "createdByType",
        "createdAt",
        "lastModifiedBy",
        "lastModifiedByType",
        "lastModifiedAt",
    ] {
        assert!(
            got.body["systemData"][key].is_string(),
            "systemData.{key}: {}",
            got.body["systemData"]
        );
    }
    assert_eq!(
        got.body["systemData"]["createdAt"],
        fixture["properties"]["creationDate"]
    );

    let listed = get(&c, &url(sim.endpoint(), &format!("/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerRegistry/registries"), ACR)).await;
    let example = fixture_body("acr-2025-11-01.RegistryListByResourceGroup.json", "200");
    let item_keys = |v: &Value| {
        v.as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
    };
    let served = item_keys(&listed.body["value"][0]);
    assert!(
        item_keys(&example["value"][0]).is_subset(&served),
        "{served:?}"
    );
    assert_eq!(listed.body["value"].as_array().unwrap().len(), 2);

    // connections, as in the PrivateEndpointConnectionList example
    let conns = get(
        &c,
        &url(
            sim.endpoint(),
            &format!("{}/privateEndpointConnections", registry_id("myRegistry0")),
            ACR,
        ),
    )
    .await;
    let example = fixture_body("acr-2025-11-01.PrivateEndpointConnectionList.json", "200");
    let approved = conns.body["value"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "approved")
        .unwrap()
        .clone();
    assert_eq!(approved["properties"], example["value"][0]["properties"]);
    assert_eq!(approved["type"], example["value"][0]["type"]);
    assert!(approved["systemData"].is_object());
    let one = get(
        &c,
        &url(
            sim.endpoint(),
            &connection_id("myRegistry0", "approved"),
            ACR,
        ),
    )
    .await;
    assert_eq!(one.body, approved);

    // private link resources, as in the RegistryListPrivateLinkResources example
    let plr = get(
        &c,
        &url(
            sim.endpoint(),
            &format!("{}/privateLinkResources", registry_id("myRegistry0")),
            ACR,
        ),
    )
    .await;
    let example = fixture_body(
        "acr-2025-11-01.RegistryListPrivateLinkResources.json",
        "200",
    );
    let (ours, theirs) = (&plr.body["value"][0], &example["value"][0]);
    assert_eq!(
        ours["id"],
        json!(format!(
            "{}/privateLinkResources/registry",
            registry_id("myRegistry0")
        ))
    );
    for key in ["name", "type"] {
        assert_eq!(ours[key], theirs[key], "{key}");
    }
    assert_eq!(
        ours["properties"]["groupId"],
        theirs["properties"]["groupId"]
    );
    assert_eq!(
        ours["properties"]["requiredZoneNames"],
        theirs["properties"]["requiredZoneNames"]
    );
    assert_eq!(
        ours["properties"]["requiredMembers"],
        json!(["registry", "registry_data_westus"])
    );
    let group = get(
        &c,
        &url(
            sim.endpoint(),
            &format!(
                "{}/privateLinkResources/REGISTRY",
                registry_id("myRegistry0")
            ),
            ACR,
        ),
    )
    .await;
    assert_eq!(&group.body, ours);
    let missing = get(
        &c,
        &url(
            sim.endpoint(),
            &format!("{}/privateLinkResources/blob", registry_id("myRegistry0")),
            ACR,
        ),
    )
    .await;
    assert_eq!(
        (missing.status, missing.error_code()),
        (StatusCode::NOT_FOUND, "ResourceNotFound")
    );

    // the private endpoint, as in the PrivateEndpointGet example
    let pe_id = endpoint_id(SUB, RG, "peexample01");
    let pe = get(&c, &url(sim.endpoint(), &pe_id, NET)).await;
    let example = fixture_body("network-2025-07-01.PrivateEndpointGet.json", "200");
    assert_eq!(pe.status, StatusCode::OK);
    assert_eq!(
        pe.body["properties"]["subnet"],
        example["properties"]["subnet"]
    );
    assert_eq!(
        pe.body["properties"]["ipConfigurations"],
        example["properties"]["ipConfigurations"]
    );
    assert_eq!(pe.body["id"], json!(pe_id));
}

#[tokio::test]
async fn paging_follows_next_link_to_the_end() {
    let sim = Sandbox::start(
        estate(5),
        SimOptions {
            page_size: 2,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let c = http();
    for path in [
        format!("/subscriptions/{SUB}/providers/Microsoft.ContainerRegistry/registries"),
        format!(
            "/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.ContainerRegistry/registries"
        ),
    ] {
        let mut next = Some(url(sim.endpoint(), &path, ACR));
        let (mut names, mut sizes) = (Vec::new(), Vec::new());
        while let Some(link) = next {
            assert!(
                link.starts_with(sim.endpoint()),
                "nextLink must be absolute: {link}"
            );
            let page = get(&c, &link).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.body);
            let value = page.body["value"].as_array().unwrap();
            sizes.push(value.len());
            names.extend(
                value
                    .iter()
                    .map(|r| r["name"].as_str().unwrap().to_string()),
            );
            next = page.body["nextLink"].as_str().map(str::to_string);
        }
        assert_eq!(sizes, vec![2, 2, 1]);
        assert_eq!(
            names,
            (0..5).map(|i| format!("myRegistry{i}")).collect::<Vec<_>>()
        );
    }
    let stats = sim.requests();
    assert_eq!(stats.count("list-registries"), 3);
    assert_eq!(stats.count("list-registries-by-group"), 3);

    // connections page too (4 connections, 2 per page)
    let first = get(
        &c,
        &url(
            sim.endpoint(),
            &format!("{}/privateEndpointConnections", registry_id("myRegistry0")),
            ACR,
        ),
    )
    .await;
    assert_eq!(first.body["value"].as_array().unwrap().len(), 2);
    let second = get(&c, first.body["nextLink"].as_str().unwrap()).await;
    assert_eq!(second.body["value"].as_array().unwrap().len(), 2);
    assert!(second.body.get("nextLink").is_none());
    // a token the sandbox never handed out
    let bogus = get(
        &c,
        &format!(
            "{}&%24skipToken=abc",
            url(
                sim.endpoint(),
                &format!("{}/privateEndpointConnections", registry_id("myRegistry0")),
                ACR
            )
        ),
    )
    .await;
    assert_eq!(bogus.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn api_version_is_checked_per_provider() {
    let sim = Sandbox::start(estate(1), SimOptions::default())
        .await
        .unwrap();
    let c = http();
    let reg = registry_id("myRegistry0");
    let missing = get(&c, &format!("{}{reg}", sim.endpoint())).await;
    assert_eq!(
        (missing.status, missing.error_code()),
        (StatusCode::BAD_REQUEST, "MissingApiVersionParameter")
    );
    let old = get(&c, &url(sim.endpoint(), &reg, "2019-05-01")).await;
    assert_eq!(
        (old.status, old.error_code()),
        (StatusCode::BAD_REQUEST, "InvalidApiVersionParameter")
    );
    let message = old.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("2019-05-01")
            && message.contains("2025-11-01")
            && message.contains("2025-04-01"),
        "{message}"
    );
    for v in ["2025-11-01", "2025-04-01"] {
        assert_eq!(
            get(&c, &url(sim.endpoint(), &reg, v)).await.status,
            StatusCode::OK,
            "{v}"
        );
    }
    let pe = endpoint_id(SUB, RG, "peexample01");
    for (v, ok) in [
        ("2025-07-01", true),
        ("2025-05-01", true),
        ("2025-11-01", false),
    ] {
        let a = get(&c, &url(sim.endpoint(), &pe, v)).await;
        assert_eq!(a.status == StatusCode::OK, ok, "{v}: {}", a.body);
    }
    for (v, ok) in [
        ("2022-12-01", true),
        ("2020-01-01", true),
        ("2025-11-01", false),
    ] {
        let a = get(&c, &url(sim.endpoint(), "/subscriptions", v)).await;
        assert_eq!(a.status == StatusCode::OK, ok, "{v}: {}", a.body);
        if !ok {
            assert_eq!(a.error_code(), "InvalidApiVersionParameter");
        }
    }
    // the query key is read case-insensitively, as ARM does
    assert_eq!(
        get(
            &c,
            &format!("{}{reg}?API-VERSION=2025-11-01", sim.endpoint())
        )
        .await
        .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_bearer_token_is_required() {
    let sim = Sandbox::start(estate(1), SimOptions::default())
        .await
        .unwrap();
    let c = http();
    let target = url(sim.endpoint(), &registry_id("myRegistry0"), ACR);
    let none = call(&c, Method::GET, &target, None, None).await;
    assert_eq!(
        (none.status, none.error_code()),
        (StatusCode::UNAUTHORIZED, "AuthenticationFailed")
    );
    assert!(
        none.header("www-authenticate")
            .unwrap()
            .starts_with("Bearer ")
    );
    let basic = c
        .get(&target)
        .header("authorization", "Basic dXNlcjpwYXNz")
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        call(&c, Method::GET, &target, Some("anything"), None)
            .await
            .status,
        StatusCode::OK
    );

    let strict = Sandbox::start(
        estate(1),
        SimOptions {
            token: Some("s3cret".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let target = url(strict.endpoint(), &registry_id("myRegistry0"), ACR);
    let wrong = call(&c, Method::GET, &target, Some("other"), None).await;
    assert_eq!(
        (wrong.status, wrong.error_code()),
        (StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken")
    );
    assert_eq!(
        call(&c, Method::GET, &target, Some("s3cret"), None)
            .await
            .status,
        StatusCode::OK
    );
    // the test hooks want the token too
    let hooks = format!("{}/_sim/requests", strict.endpoint());
    assert_eq!(
        call(&c, Method::GET, &hooks, None, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&c, Method::GET, &hooks, Some("s3cret"), None)
            .await
            .status,
        StatusCode::OK
    );
    // and the token never shows up in the options' debug output
    let debug = format!(
        "{:?}",
        SimOptions {
            token: Some("s3cret".into()),
            ..Default::default()
        }
    );
    assert!(!debug.contains("s3cret"), "{debug}");
}

#[tokio::test]
async fn not_found_forbidden_and_case_insensitive_paths() {
    let sim = Sandbox::start(estate(1), SimOptions::default())
        .await
        .unwrap();
    let c = http();
    let e = sim.endpoint();
    let nf = get(&c, &url(e, &registry_id("nope"), ACR)).await;
    assert_eq!(
        (nf.status, nf.error_code()),
        (StatusCode::NOT_FOUND, "ResourceNotFound")
    );
    assert!(
        nf.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Microsoft.ContainerRegistry/registries/nope")
    );
    let conn = get(&c, &url(e, &connection_id("myRegistry0", "nope"), ACR)).await;
    assert_eq!(
        (conn.status, conn.error_code()),
        (StatusCode::NOT_FOUND, "ResourceNotFound")
    );
    let rg = get(&c, &url(e, &format!("/subscriptions/{SUB}/resourceGroups/other/providers/Microsoft.ContainerRegistry/registries/x"), ACR)).await;
    assert_eq!(
        (rg.status, rg.error_code()),
        (StatusCode::NOT_FOUND, "ResourceGroupNotFound")
    );

    // endpoints in a subscription outside the estate: 403 shaped like the real AuthorizationFailed body
    let foreign = get(&c, &url(e, &endpoint_id(FOREIGN_SUB, "net", "pe-a"), NET)).await;
    assert_eq!(
        (foreign.status, foreign.error_code()),
        (StatusCode::FORBIDDEN, "AuthorizationFailed")
    );
    let real = fixture("supportarticles.AuthorizationFailed.error.json");
    let keys = |v: &Value| {
        v["error"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&foreign.body), keys(&real));
    let message = foreign.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("does not have authorization to perform action 'Microsoft.Network/privateEndpoints/read' over scope"), "{message}");
    assert!(message.contains(FOREIGN_SUB));
    // a readable subscription without that endpoint: 404
    let gone = get(&c, &url(e, &endpoint_id(SUB, RG, "pe-gone"), NET)).await;
    assert_eq!(
        (gone.status, gone.error_code()),
        (StatusCode::NOT_FOUND, "ResourceNotFound")
    );
    let list = get(
        &c,
        &url(
            e,
            &format!(
                "/subscriptions/{FOREIGN_SUB}/providers/Microsoft.ContainerRegistry/registries"
            ),
            ACR,
        ),
    )
    .await;
    assert_eq!(
        (list.status, list.error_code()),
        (StatusCode::FORBIDDEN, "AuthorizationFailed")
    );

    // endpoints in another tenant's subscription: 401 InvalidAuthenticationTokenTenant
    let other = Sandbox::start(
        estate(1),
        SimOptions {
            other_tenant_subscriptions: vec![FOREIGN_SUB.to_uppercase()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let tenant = get(
        &c,
        &url(
            other.endpoint(),
            &endpoint_id(FOREIGN_SUB, "net", "pe-a"),
            NET,
        ),
    )
    .await;
    assert_eq!(
        (tenant.status, tenant.error_code()),
        (StatusCode::UNAUTHORIZED, "InvalidAuthenticationTokenTenant")
    );
    assert!(
        tenant.body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("The access token is from the wrong issuer")
    );

    // ARM paths compare case-insensitively
    let lower = get(
        &c,
        &url(
            e,
            &connection_id("myRegistry0", "approved").to_lowercase(),
            ACR,
        ),
    )
    .await;
    assert_eq!(lower.status, StatusCode::OK);
    assert_eq!(lower.body["name"], "approved");
    let upper = get(
        &c,
        &url(
            e,
            &registry_id("MYREGISTRY0").replace("resourceGroups", "RESOURCEGROUPS"),
            ACR,
        ),
    )
    .await;
    assert_eq!(upper.body["name"], "myRegistry0");

    let unknown = get(
        &c,
        &url(e, &format!("{}/webhooks", registry_id("myRegistry0")), ACR),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let method = call(
        &c,
        Method::POST,
        &url(e, &registry_id("myRegistry0"), ACR),
        Some("t"),
        Some(&json!({})),
    )
    .await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn subscriptions_are_those_of_the_estate() {
    let mut est = estate(1);
    est["registries"]
        .as_array_mut()
        .unwrap()
        .push(registry("other", vec![]));
    est["registries"][1]["id"] = json!(format!(
        "/subscriptions/{FOREIGN_SUB}/resourceGroups/rg2/providers/Microsoft.ContainerRegistry/registries/other"
    ));
    let sim = Sandbox::start(est, SimOptions::default()).await.unwrap();
    let subs = get(
        &http(),
        &url(sim.endpoint(), "/subscriptions", "2022-12-01"),
    )
    .await;
    assert_eq!(subs.status, StatusCode::OK);
    let value = subs.body["value"].as_array().unwrap();
    let ids: Vec<&str> = value
        .iter()
        .map(|s| s["subscriptionId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![SUB, FOREIGN_SUB]);
    for s in value {
        assert_eq!(
            s["id"],
            json!(format!(
                "/subscriptions/{}",
                s["subscriptionId"].as_str().unwrap()
            ))
        );
        assert_eq!(s["state"], "Enabled");
        assert!(s["displayName"].is_string());
    }
    assert_eq!(sim.requests().count("list-subscriptions"), 1);
}

#[tokio::test]
async fn connection_put_is_validated_and_rejection_is_final() {
    let sim = Sandbox::start(estate(1), quick()).await.unwrap();
    let c = http();
    let put = |name: &str, body: Value| {
        let c = c.clone();
        let u = url(sim.endpoint(), &connection_id("myRegistry0", name), ACR);
        async move { call(&c, Method::PUT, &u, Some("t"), Some(&body)).await }
    };
    let state = |status: &str| json!({"properties": {"privateLinkServiceConnectionState": {"status": status, "description": "by test"}}});

    let started = put("pending-b", state("Rejected")).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    assert_eq!(finish_async(&c, &started).await["status"], "Succeeded");
    let now = sim
        .connection_json(&connection_id("myRegistry0", "pending-b"))
        .unwrap();
    assert_eq!(
        now["properties"]["privateLinkServiceConnectionState"]["status"],
        "Rejected"
    );

    for name in ["pending-b", "rejected"] {
        let again = put(name, state("Approved")).await;
        assert_eq!(
            (again.status, again.error_code()),
            (StatusCode::BAD_REQUEST, "BadRequest"),
            "{name}"
        );
        assert_eq!(
            again.body["error"]["message"],
            "Approving rejected private endpoint connections is not supported."
        );
    }
    assert_eq!(
        sim.connection_json(&connection_id("myRegistry0", "rejected"))
            .unwrap()["properties"]["privateLinkServiceConnectionState"]["status"],
        "Rejected"
    );

    for (body, field) in [
        (
            json!({"properties": {}}),
            "privateLinkServiceConnectionState",
        ),
        (
            json!({"properties": {"privateLinkServiceConnectionState": {"status": "Maybe"}}}),
            "status",
        ),
        (
            json!({"properties": {"privateEndpoint": {"id": endpoint_id(SUB, RG, "someone-else")}, "privateLinkServiceConnectionState": {"status": "Approved"}}}),
            "privateEndpoint.id",
        ),
    ] {
        let bad = put("pending-a", body).await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(
            bad.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(field),
            "{}",
            bad.body
        );
    }
    let not_json = c
        .put(url(
            sim.endpoint(),
            &connection_id("myRegistry0", "pending-a"),
            ACR,
        ))
        .bearer_auth("t")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let missing = put("ghost", state("Approved")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // the privateEndpoint may be sent, when it is the connection's own
    let own = json!({"properties": {"privateEndpoint": {"id": endpoint_id(FOREIGN_SUB, "net", "pe-a")}, "privateLinkServiceConnectionState": {"status": "Approved"}}});
    let ok = put("pending-a", own).await;
    assert_eq!(ok.status, StatusCode::CREATED);
    finish_async(&c, &ok).await;
    let registry = sim.registry_json(&registry_id("myRegistry0")).unwrap();
    let a = registry["properties"]["privateEndpointConnections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "pending-a")
        .unwrap()
        .clone();
    assert_eq!(
        a["properties"]["privateLinkServiceConnectionState"]["status"],
        "Approved"
    );
    // the requester's message stays when the PUT has no description
    assert_eq!(
        a["properties"]["privateLinkServiceConnectionState"]["description"],
        "CHG000123 please approve"
    );
    assert_eq!(a["systemData"]["lastModifiedBy"], "linkguard-sim-client");
}

#[tokio::test]
async fn patch_merges_properties_and_replaces_the_rule_set() {
    let mut est = estate(2);
    est["registries"][0]["properties"]["networkRuleSet"]["ipRules"] =
        json!([{"action": "Allow", "value": "192.0.2.1"}]);
    est["registries"][1]["sku"] = json!({"name": "Standard", "tier": "Standard"});
    let sim = Sandbox::start(est, quick()).await.unwrap();
    let c = http();
    let patch = |name: &str, body: Value| {
        let c = c.clone();
        let u = url(sim.endpoint(), &registry_id(name), ACR);
        async move { call(&c, Method::PATCH, &u, Some("t"), Some(&body)).await }
    };
    let before = sim.registry_json(&registry_id("myRegistry0")).unwrap();
    let started = patch(
        "myRegistry0",
        json!({"tags": {"team": "platform"}, "properties": {"publicNetworkAccess": "Disabled", "networkRuleBypassOptions": "None",
            "networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"value": "203.0.113.0/24"}]}, "policies": {"exportPolicy": {"status": "disabled"}}}}),
    )
    .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.body);
    assert_eq!(started.header("retry-after"), Some("0"));
    let op = started.header("azure-asyncoperation").unwrap();
    assert!(
        op.starts_with(&format!(
            "{}{}/operationStatuses/registries-",
            sim.endpoint(),
            registry_id("myRegistry0")
        )),
        "{op}"
    );
    assert!(op.ends_with("?api-version=2025-11-01"));
    assert_eq!(started.body["properties"]["provisioningState"], "Updating");
    assert_eq!(
        started.body["properties"]["publicNetworkAccess"],
        "Disabled"
    );
    assert_eq!(finish_async(&c, &started).await["status"], "Succeeded");

    let after = get(&c, &url(sim.endpoint(), &registry_id("myRegistry0"), ACR))
        .await
        .body;
    assert_eq!(after["tags"], json!({"team": "platform"}));
    assert_eq!(after["properties"]["publicNetworkAccess"], "Disabled");
    assert_eq!(after["properties"]["networkRuleBypassOptions"], "None");
    assert_eq!(
        after["properties"]["networkRuleSet"],
        json!({"defaultAction": "Deny", "ipRules": [{"action": "Allow", "value": "203.0.113.0/24"}]})
    );
    assert_eq!(
        after["properties"]["policies"]["exportPolicy"]["status"],
        "disabled"
    );
    assert_eq!(
        after["properties"]["policies"]["retentionPolicy"],
        before["properties"]["policies"]["retentionPolicy"]
    );
    assert_eq!(
        after["properties"]["loginServer"],
        before["properties"]["loginServer"]
    );
    assert_eq!(after["properties"]["provisioningState"], "Succeeded");
    assert_eq!(
        after["properties"]["privateEndpointConnections"],
        before["properties"]["privateEndpointConnections"]
    );

    let no_action = patch(
        "myRegistry0",
        json!({"properties": {"networkRuleSet": {"ipRules": []}}}),
    )
    .await;
    assert_eq!(
        (no_action.status, no_action.error_code()),
        (StatusCode::BAD_REQUEST, "InvalidRequestContent")
    );
    assert!(
        no_action.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("networkRuleSet.defaultAction")
    );
    let bad_ip = patch("myRegistry0", json!({"properties": {"networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"value": "2001:db8::/32"}]}}})).await;
    assert!(
        bad_ip.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ipRules[0].value"),
        "{}",
        bad_ip.body
    );
    let standard = patch(
        "myRegistry1",
        json!({"properties": {"publicNetworkAccess": "Disabled"}}),
    )
    .await;
    assert_eq!(standard.status, StatusCode::BAD_REQUEST);
    assert!(
        standard.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Premium")
    );
    let missing = patch("nope", json!({"properties": {}})).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn requests_are_counted_under_the_operation_names() {
    let sim = Sandbox::start(
        estate(1),
        SimOptions {
            page_size: 2,
            ..quick()
        },
    )
    .await
    .unwrap();
    let c = http();
    let e = sim.endpoint();
    get(&c, &url(e, "/subscriptions", "2022-12-01")).await;
    get(&c, &url(e, &registry_id("myRegistry0"), ACR)).await;
    get(&c, &url(e, &registry_id("myRegistry0"), ACR)).await;
    get(&c, &url(e, &connection_id("myRegistry0", "approved"), ACR)).await;
    get(&c, &url(e, &endpoint_id(SUB, RG, "peexample01"), NET)).await;
    let put = call(
        &c,
        Method::PUT,
        &url(e, &connection_id("myRegistry0", "pending-a"), ACR),
        Some("t"),
        Some(&json!({"properties": {"privateLinkServiceConnectionState": {"status": "Approved"}}})),
    )
    .await;
    finish_async(&c, &put).await;
    get(&c, &format!("{e}/_sim/requests")).await; // not counted
    let stats = sim.requests();
    assert_eq!(stats.total, 7);
    assert_eq!(stats.count("get-registry"), 2);
    assert_eq!(stats.count("list-subscriptions"), 1);
    assert_eq!(stats.count("get-connection"), 1);
    assert_eq!(stats.count("get-private-endpoint"), 1);
    assert_eq!(stats.count("put-connection"), 1);
    assert_eq!(stats.count("connection-operation-status"), 1);
    assert_eq!(stats.count_method("GET"), 6);
    assert_eq!(stats.count_status(201), 1);
    let names = routing::operation_names();
    assert!(
        stats
            .by_operation
            .keys()
            .all(|k| names.contains(&k.as_str())),
        "{:?}",
        stats.by_operation
    );
    assert_eq!(
        stats.log.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<u64>>()
    );
    assert_eq!(stats.log[1].api_version.as_deref(), Some(ACR));

    // the same over HTTP, then reset
    let over_http = get(&c, &format!("{e}/_sim/requests")).await.body;
    assert_eq!(over_http["total"], 7);
    assert_eq!(over_http["by_operation"]["get-registry"], 2);
    assert_eq!(
        call(&c, Method::POST, &format!("{e}/_sim/reset"), None, None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(sim.requests().total, 0);

    // throttling headers on every ARM answer (no bucket fault: the whole bucket is on offer)
    let read = get(&c, &url(e, &registry_id("myRegistry0"), ACR)).await;
    assert_eq!(
        read.header("x-ms-ratelimit-remaining-subscription-reads"),
        Some("250")
    );
    assert!(read.header("x-ms-request-id").is_some());
    let write = call(
        &c,
        Method::PATCH,
        &url(e, &registry_id("myRegistry0"), ACR),
        Some("t"),
        Some(&json!({"properties": {}})),
    )
    .await;
    assert_eq!(
        write.header("x-ms-ratelimit-remaining-subscription-writes"),
        Some("200")
    );
}

#[tokio::test]
async fn test_hooks_add_and_change_connections() {
    let sim = Sandbox::start(estate(1), quick()).await.unwrap();
    let c = http();
    let e = sim.endpoint();
    let reg = registry_id("myRegistry0");

    let added = call(&c, Method::POST, &format!("{e}/_sim/connections"), None,
        Some(&json!({"registry": reg, "privateEndpoint": endpoint_id(FOREIGN_SUB, "net", "pe-new"), "name": "newcomer", "description": "CHG000999"}))).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_eq!(
        added.body["id"],
        json!(connection_id("myRegistry0", "newcomer"))
    );
    let seen = get(&c, &url(e, &connection_id("myRegistry0", "newcomer"), ACR)).await;
    assert_eq!(
        seen.body["properties"]["privateLinkServiceConnectionState"]["status"],
        "Pending"
    );
    assert_eq!(
        seen.body["properties"]["privateLinkServiceConnectionState"]["description"],
        "CHG000999"
    );
    let dup = call(&c, Method::POST, &format!("{e}/_sim/connections"), None,
        Some(&json!({"registry": reg, "privateEndpoint": endpoint_id(FOREIGN_SUB, "net", "pe-new"), "name": "newcomer"}))).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    let typo = call(
        &c,
        Method::POST,
        &format!("{e}/_sim/connections"),
        None,
        Some(&json!({"registry": reg, "endpoint": "x"})),
    )
    .await;
    assert_eq!(typo.status, StatusCode::BAD_REQUEST);
    assert!(
        typo.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("endpoint"),
        "{}",
        typo.body
    );

    // "someone else" disconnects the approved one
    let changed = call(&c, Method::PUT, &format!("{e}/_sim/connections/state"), None,
        Some(&json!({"connection": connection_id("myRegistry0", "approved"), "status": "Disconnected"}))).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let registry = get(&c, &url(e, &reg, ACR)).await.body;
    let statuses: Vec<(String, String)> = registry["properties"]["privateEndpointConnections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["properties"]["privateLinkServiceConnectionState"]["status"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert!(
        statuses.contains(&("approved".into(), "Disconnected".into())),
        "{statuses:?}"
    );
    assert!(statuses.contains(&("newcomer".into(), "Pending".into())));
    // a Disconnected connection can only be deleted
    let put = call(
        &c,
        Method::PUT,
        &url(e, &connection_id("myRegistry0", "approved"), ACR),
        Some("t"),
        Some(&json!({"properties": {"privateLinkServiceConnectionState": {"status": "Approved"}}})),
    )
    .await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST);

    // in-process hooks do the same
    let auto = sim
        .add_connection(
            &reg,
            linkguard::sim::NewConnection::pending(&endpoint_id(SUB, RG, "peexample01"), "hi"),
        )
        .unwrap();
    assert!(auto["name"].as_str().unwrap().starts_with("peexample01."));
    assert!(matches!(
        sim.set_connection_status(&connection_id("myRegistry0", "ghost"), "Approved", None),
        Err(SimError::NotFound(_))
    ));
    assert!(matches!(
        sim.set_connection_status(&connection_id("myRegistry0", "newcomer"), "Sideways", None),
        Err(SimError::Invalid(_))
    ));
    let pe = endpoint(&endpoint_id(FOREIGN_SUB, "net", "pe-new"), "myRegistry0");
    assert_eq!(
        call(
            &c,
            Method::POST,
            &format!("{e}/_sim/privateEndpoints"),
            None,
            Some(&pe)
        )
        .await
        .status,
        StatusCode::CREATED
    );
    // its subscription is in the estate now, so the endpoint is readable
    let read = get(&c, &url(e, &endpoint_id(FOREIGN_SUB, "net", "pe-new"), NET)).await;
    assert_eq!(read.status, StatusCode::OK);

    // none of that was an ARM request
    assert_eq!(sim.requests().count("unknown"), 0);
    // the estate goes back as loaded
    call(
        &c,
        Method::POST,
        &format!("{e}/_sim/reset?estate=true"),
        None,
        None,
    )
    .await;
    assert!(
        sim.connection_json(&connection_id("myRegistry0", "newcomer"))
            .is_none()
    );
    let estate_now = get(&c, &format!("{e}/_sim/estate")).await.body;
    assert_eq!(
        estate_now["registries"][0]["properties"]["privateEndpointConnections"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(sim.requests().total, 0);
}

#[tokio::test]
async fn a_bad_estate_is_refused_with_the_field_path() {
    let mut bad = estate(2);
    bad["registries"][1]["properties"]["networkRuleSet"]["defaultAction"] = json!(5);
    let err = Sandbox::start(bad, SimOptions::default())
        .await
        .err()
        .expect("a bad estate must be refused");
    assert!(matches!(err, SimError::Estate(_)));
    assert!(
        err.to_string()
            .contains("registries[1].properties.networkRuleSet.defaultAction"),
        "{err}"
    );

    let mut no_id = estate(1);
    no_id["registries"][0]["properties"]["privateEndpointConnections"][2]
        .as_object_mut()
        .unwrap()
        .remove("id");
    let err = Sandbox::start(no_id, SimOptions::default())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("registries[0].properties.privateEndpointConnections[2]: missing field `id`"),
        "{err}"
    );

    let mut stray = estate(1);
    stray["registries"][0]["properties"]["privateEndpointConnections"][0]["id"] =
        json!(connection_id("myRegistry9", "pending-a"));
    let err = Sandbox::start(stray, SimOptions::default())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("registries[0].properties.privateEndpointConnections[0].id"),
        "{err}"
    );

    let mut bad_pe = estate(1);
    bad_pe["privateEndpoints"][0]["properties"]["subnet"]["id"] = json!("not-an-id");
    let err = Sandbox::start(bad_pe, SimOptions::default())
        .await
        .err()
        .unwrap();
    assert!(
        err.to_string()
            .contains("privateEndpoints[0].properties.subnet.id"),
        "{err}"
    );

    // the az CLI's flattened shape is read too, and served in ARM's shape
    let flat = json!([{"id": registry_id("flat1"), "name": "flat1", "resourceGroup": RG, "sku": {"name": "Premium"},
        "publicNetworkAccess": "Disabled", "privateEndpointConnections": [{"id": connection_id("flat1", "c1"), "resourceGroup": RG,
        "privateEndpoint": {"id": endpoint_id(SUB, RG, "pe1")}, "privateLinkServiceConnectionState": {"status": "Pending"}}]}]);
    let sim = Sandbox::start(flat, SimOptions::default()).await.unwrap();
    let r = get(&http(), &url(sim.endpoint(), &registry_id("flat1"), ACR))
        .await
        .body;
    assert_eq!(r["properties"]["publicNetworkAccess"], "Disabled");
    assert!(r.get("resourceGroup").is_none());
    assert!(r.get("publicNetworkAccess").is_none());
    assert_eq!(
        r["properties"]["privateEndpointConnections"][0]["properties"]["privateLinkServiceConnectionState"]
            ["status"],
        "Pending"
    );
}
