"""Drives `linkguard sim` with the official Azure SDK for Python (azure-mgmt-containerregistry).

Run by tests/sim_python_sdk.rs with .venv-sdk/bin/python (created by scripts/test.sh from
requirements/sdk.txt). The sandbox is given by environment variables:

  SIM_ENDPOINT      https://127.0.0.1:PORT
  SIM_CA_CERT       PEM of the sandbox's CA
  SIM_TOKEN         bearer token to present
  SIM_SUBSCRIPTION  subscription id
  SIM_RESOURCE_GROUP, SIM_REGISTRY   the registry whose connections are changed
  SIM_APPROVE, SIM_REJECT, SIM_DELETE, SIM_REJECTED   connection names (pending, pending, any, rejected)

Prints one JSON object with what the SDK saw; the Rust test asserts on it and on the sandbox.
Any unexpected SDK error propagates and exits non-zero.
"""

import json
import os
import sys
import time

import azure.core
import azure.mgmt.containerregistry
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.containerregistry import models


class StaticTokenCredential:
    """A TokenCredential that hands out a fixed token (the sandbox accepts any bearer token
    unless started with --token)."""

    def __init__(self, token):
        self._token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self._token, int(time.time()) + 3600)


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"sdk_fidelity.py: environment variable {name} is not set")
    return value


def client(api_version=None):
    kwargs = {
        "credential": StaticTokenCredential(env("SIM_TOKEN")),
        "subscription_id": env("SIM_SUBSCRIPTION"),
        "base_url": env("SIM_ENDPOINT"),
        "connection_verify": env("SIM_CA_CERT"),
        # The sandbox advertises Retry-After: 0; without a hint the SDK would wait 30 s per poll.
        "polling_interval": 0.05,
        "retry_total": 0,
    }
    if api_version:
        kwargs["api_version"] = api_version
    return ContainerRegistryManagementClient(**kwargs)


def error_info(err):
    return {"status": err.status_code, "code": err.error.code if err.error else None, "message": str(err.message)}


def connection_state(conn):
    state = conn.private_link_service_connection_state
    return {
        "name": conn.name,
        "status": state.status if state else None,
        "description": state.description if state else None,
        "provisioning_state": conn.provisioning_state,
        "private_endpoint": conn.private_endpoint.id if conn.private_endpoint else None,
    }


def main():
    rg, registry = env("SIM_RESOURCE_GROUP"), env("SIM_REGISTRY")
    c = client()
    out = {
        "sdk": {"azure-mgmt-containerregistry": azure.mgmt.containerregistry.__version__, "azure-core": azure.core.__version__},
        "default_api_version": c._config.api_version,
    }

    # Paging: registries.list() follows nextLink across the sandbox's pages.
    out["registries"] = [r.name for r in c.registries.list()]
    out["registries_in_group"] = [r.name for r in c.registries.list_by_resource_group(rg)]

    conns = c.private_endpoint_connections
    out["connections_before"] = [connection_state(x) for x in conns.list(rg, registry)]
    out["get_connection"] = connection_state(conns.get(rg, registry, env("SIM_APPROVE")))

    def set_state(name, status, description):
        body = models.PrivateEndpointConnection(
            private_link_service_connection_state=models.PrivateLinkServiceConnectionState(status=status, description=description)
        )
        return connection_state(conns.begin_create_or_update(rg, registry, name, body).result())

    out["approved"] = set_state(env("SIM_APPROVE"), "Approved", "approved by sdk_fidelity.py")
    out["rejected"] = set_state(env("SIM_REJECT"), "Rejected", "rejected by sdk_fidelity.py")
    try:
        set_state(env("SIM_REJECTED"), "Approved", "must fail")
        out["approve_rejected"] = {"status": None}
    except HttpResponseError as err:
        out["approve_rejected"] = error_info(err)

    conns.begin_delete(rg, registry, env("SIM_DELETE")).result()
    try:
        conns.get(rg, registry, env("SIM_DELETE"))
        out["deleted_get"] = {"status": 200}
    except ResourceNotFoundError as err:
        out["deleted_get"] = error_info(err)
    out["connections_after"] = [connection_state(x) for x in conns.list(rg, registry)]

    update = models.RegistryUpdateParameters(
        public_network_access="Disabled",
        network_rule_bypass_options="AzureServices",
        network_rule_set=models.NetworkRuleSet(
            default_action="Deny",
            ip_rules=[models.IPRule(ip_address_or_range="203.0.113.0/24"), models.IPRule(ip_address_or_range="198.51.100.7")],
        ),
    )
    updated = c.registries.begin_update(rg, registry, update).result()
    out["updated"] = {
        "public_network_access": updated.public_network_access,
        "network_rule_bypass_options": updated.network_rule_bypass_options,
        "default_action": updated.network_rule_set.default_action,
        "ip_rules": [r.ip_address_or_range for r in updated.network_rule_set.ip_rules],
        "provisioning_state": updated.provisioning_state,
        "connections": len(updated.private_endpoint_connections or []),
    }

    out["private_link_resources"] = [
        {"name": r.name, "group_id": r.properties.group_id, "required_zone_names": r.properties.required_zone_names}
        for r in c.registries.list_private_link_resources(rg, registry)
    ]
    out["private_link_resource"] = c.registries.get_private_link_resource(rg, registry, "registry").properties.group_id

    try:
        c.registries.get(rg, "doesnotexist1")
        out["missing_registry"] = {"status": 200}
    except ResourceNotFoundError as err:
        out["missing_registry"] = error_info(err)

    # The previous stable api-version (the default of older SDK releases) is served too.
    old = client("2025-04-01")
    out["old_api_version_get"] = old.registries.get(rg, registry).name
    try:
        client("2019-05-01").registries.get(rg, registry)
        out["unsupported_api_version"] = {"status": 200}
    except HttpResponseError as err:
        out["unsupported_api_version"] = error_info(err)

    print(json.dumps(out))


if __name__ == "__main__":
    main()
