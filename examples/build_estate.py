#!/usr/bin/env python3
"""Builds examples/estate.json (ARM shape) and examples/estate-az.json (az CLI flattened shape)
from the real ARM example bodies in ../shared/fixtures/arm/, so the sample estate keeps ARM's exact
field set. Run from the repo root: python3 examples/build_estate.py"""
import copy, json, pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
ARM = ROOT.parent / "shared" / "fixtures" / "arm"

def body(name, code="200"):
    return json.loads((ARM / name).read_text())["responses"][code]["body"]

REGISTRY = body("acr-2025-11-01.RegistryGet.json")
CONNECTION = body("acr-2025-11-01.PrivateEndpointConnectionGet.json")
ENDPOINT = body("network-2025-07-01.PrivateEndpointGet.json")

PLATFORM = "11111111-1111-1111-1111-111111111111"   # the registries' (and platform's) subscription
PARTNER = "22222222-2222-2222-2222-222222222222"    # a partner subscription linkguard may read
FOREIGN = "33333333-3333-3333-3333-333333333333"    # another tenant: endpoints cannot be read
OTHER = "44444444-4444-4444-4444-444444444444"      # a subscription outside the policy's scope

def rid(sub, rg, provider, *levels):
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{provider}/" + "/".join(levels)

def registry(sub, rg, name, sku="Premium", **props):
    r = copy.deepcopy(REGISTRY)
    r["id"] = rid(sub, rg, "Microsoft.ContainerRegistry", "registries", name)
    r["name"] = name
    r["sku"] = {"name": sku, "tier": sku}
    r["properties"]["loginServer"] = f"{name}.azurecr.io"
    r["properties"].update(props)
    return r

def pe_id(sub, rg, name):
    return rid(sub, rg, "Microsoft.Network", "privateEndpoints", name)

def connection(reg, name, pe, status, description, provisioning="Succeeded", actions="None"):
    c = copy.deepcopy(CONNECTION)
    c["id"] = f"{reg['id']}/privateEndpointConnections/{name}"
    c["name"] = name
    c["properties"]["privateEndpoint"]["id"] = pe
    c["properties"]["provisioningState"] = provisioning
    c["properties"]["privateLinkServiceConnectionState"] = {
        "status": status, "description": description, "actionsRequired": actions}
    reg["properties"]["privateEndpointConnections"].append(c)

def endpoint(pe, subnet, target_registry, message):
    e = copy.deepcopy(ENDPOINT)
    e["id"] = pe
    e["name"] = pe.rsplit("/", 1)[1]
    props = e["properties"]
    props["subnet"]["id"] = subnet
    props["networkInterfaces"] = []
    props["customDnsConfigs"] = []
    props["ipConfigurations"] = []
    props.pop("customNetworkInterfaceName", None)
    pls = props["privateLinkServiceConnections"][0]
    pls["id"] = f"{pe}/privateLinkServiceConnections/{e['name']}"
    pls["name"] = e["name"]
    pls["properties"]["privateLinkServiceId"] = target_registry
    pls["properties"]["groupIds"] = ["registry"]
    pls["properties"]["requestMessage"] = message
    pls["properties"]["privateLinkServiceConnectionState"] = {"status": "Pending", "description": message, "actionsRequired": "None"}
    return e

HUB = rid(PLATFORM, "net-hub", "Microsoft.Network", "virtualNetworks", "hub")
HUB2 = rid(PLATFORM, "net-hub", "Microsoft.Network", "virtualNetworks", "hub2")

locked = dict(publicNetworkAccess="Disabled", networkRuleSet={"defaultAction": "Deny", "ipRules": []})
prod01 = registry(PLATFORM, "rg-prod-weu", "acrprod01", **locked)
pe_aks = pe_id(PLATFORM, "net-hub", "pe-aks-weu")
pe_hub2 = pe_id(PLATFORM, "net-hub", "pe-lab-hub2")
pe_partner = pe_id(PARTNER, "partner-ci", "pe-partner-build")
pe_unknown = pe_id(FOREIGN, "contoso-apps", "pe-contoso")
pe_quarantine = pe_id(FOREIGN, "quarantine-lab", "pe-scan")
pe_quarantine_old = pe_id(FOREIGN, "quarantine-lab", "pe-old-scanner")
connection(prod01, "pe-aks-weu.1a2b", pe_aks, "Pending", "AKS weu cluster pulls")
connection(prod01, "pe-lab-hub2.3c4d", pe_hub2, "Pending", "lab cluster")
connection(prod01, "pe-partner-build.5e6f", pe_partner, "Pending", "CHG123456 partner build agents")
connection(prod01, "pe-contoso.7a8b", pe_unknown, "Pending", "please approve")
connection(prod01, "pe-scan.9c0d", pe_quarantine, "Pending", "scanner")
connection(prod01, "pe-old-scanner.1e2f", pe_quarantine_old, "Approved", "Auto-Approved")
connection(prod01, "pe-retired.3a4b", pe_id(PLATFORM, "net-hub", "pe-retired"), "Disconnected", "Endpoint deleted")
connection(prod01, "pe-denied.5c6d", pe_id(FOREIGN, "contoso-apps", "pe-denied"), "Rejected", "Rejected by platform team")

prod02 = registry(PLATFORM, "rg-prod-neu", "acrprod02",
                  publicNetworkAccess="Enabled",
                  networkRuleSet={"defaultAction": "Allow", "ipRules": [
                      {"action": "Allow", "value": "203.0.113.10"},
                      {"action": "Allow", "value": "198.51.100.0/24"}]},
                  networkRuleBypassOptions="None", networkRuleBypassAllowedForTasks=True)
pe_neu = pe_id(PLATFORM, "net-hub", "pe-aks-neu")
connection(prod02, "pe-aks-neu.7e8f", pe_neu, "Pending", "AKS neu cluster", provisioning="Failed", actions="Recreate")
connection(prod02, "pe-aks-neu-2.9a0b", pe_id(PLATFORM, "net-hub", "pe-aks-neu-2"), "Approved", "Approved by linkguard rule platform-subnets")

legacy = registry(PLATFORM, "rg-prod-weu", "acrlegacy",
                  publicNetworkAccess="Disabled",
                  networkRuleSet={"defaultAction": "Deny", "ipRules": [], "virtualNetworkRules": [
                      {"action": "Allow", "id": rid(PLATFORM, "net-hub", "Microsoft.Network", "virtualNetworks", "hub", "subnets", "build")}]},
                  networkRuleBypassOptions="None")
connection(legacy, "pe-build.1c2d", pe_id(PLATFORM, "net-hub", "pe-build"), "Approved", "Auto-Approved")

dev = registry(PLATFORM, "rg-prod-dev", "acrproddev", sku="Standard")
sandbox = registry(PLATFORM, "rg-prod-weu", "sandbox01")
connection(sandbox, "pe-sandbox.3e4f", pe_id(PLATFORM, "net-hub", "pe-sandbox"), "Pending", "try me")
outside = registry(OTHER, "rg-prod-weu", "acrothersub")
connection(outside, "pe-other.5a6b", pe_id(OTHER, "net", "pe-other"), "Pending", "other subscription")

registries = [prod01, prod02, legacy, dev, sandbox, outside]
endpoints = [
    endpoint(pe_aks, f"{HUB}/subnets/private-endpoints", prod01["id"], "AKS weu cluster pulls"),
    endpoint(pe_hub2, f"{HUB2}/subnets/private-endpoints", prod01["id"], "lab cluster"),
    endpoint(pe_partner, rid(PARTNER, "partner-ci", "Microsoft.Network", "virtualNetworks", "ci", "subnets", "agents"), prod01["id"], "CHG123456 partner build agents"),
    endpoint(pe_neu, f"{HUB}/subnets/private-endpoints", prod02["id"], "AKS neu cluster"),
    endpoint(pe_id(PLATFORM, "net-hub", "pe-aks-neu-2"), f"{HUB}/subnets/private-endpoints", prod02["id"], "AKS neu cluster 2"),
    endpoint(pe_id(PLATFORM, "net-hub", "pe-build"), f"{HUB}/subnets/build", legacy["id"], "build agents"),
]

estate = {"registries": registries, "privateEndpoints": endpoints}
(ROOT / "examples" / "estate.json").write_text(json.dumps(estate, indent=2) + "\n")

# The same estate as `az acr list` / `az network private-endpoint show` print it: properties hoisted,
# and network rules under the az SDK's attribute names (ipAddressOrRange, virtualNetworkResourceId)
# instead of ARM's wire names (value, id).
AZ_RULE_KEYS = {"ipRules": ("value", "ipAddressOrRange"), "virtualNetworkRules": ("id", "virtualNetworkResourceId")}

def az_rule_set(rule_set):
    out = dict(rule_set)
    for key, (arm_name, az_name) in AZ_RULE_KEYS.items():
        if key in out:
            out[key] = [{(az_name if k == arm_name else k): v for k, v in rule.items()} for rule in out[key]]
    return out

def flatten(obj, nested=()):
    out = {k: v for k, v in obj.items() if k != "properties"}
    out["resourceGroup"] = obj["id"].split("/")[4]
    for k, v in obj.get("properties", {}).items():
        if k in nested and isinstance(v, list):
            v = [{**{kk: vv for kk, vv in x.items() if kk != "properties"}, **x.get("properties", {})} for x in v]
        if k == "networkRuleSet" and isinstance(v, dict):
            v = az_rule_set(v)
        out[k] = v
    return out

az = {"registries": [flatten(r, ("privateEndpointConnections",)) for r in registries],
      "privateEndpoints": [flatten(e, ("privateLinkServiceConnections", "manualPrivateLinkServiceConnections")) for e in endpoints]}
(ROOT / "examples" / "estate-az.json").write_text(json.dumps(az, indent=2) + "\n")
print("wrote examples/estate.json and examples/estate-az.json")
