"""The official Python SDK's documented way to check private endpoint connections across a fleet:
list the registries, then list each registry's connections (`private_endpoint_connections.list`)
and count their states. Run by the bench (src/bin/bench) against `linkguard sim --tls`, to compare
with `linkguard audit --dry-run` on the same sandbox and estate.

Environment:
  SIM_ENDPOINT      https://127.0.0.1:PORT (the sandbox's ready line)
  SIM_CA_CERT       PEM of the sandbox's CA (its ready line's ca_cert)
  SIM_TOKEN         bearer token to present (the sandbox accepts any unless started with --token)
  SIM_SUBSCRIPTION  subscription id

Prints one JSON line: registries, connections, states, loop_seconds (the loop alone, imports and
client construction excluded). Any SDK error propagates and exits non-zero.
"""

import collections
import json
import os
import sys
import time

from azure.core.credentials import AccessToken
from azure.mgmt.containerregistry import ContainerRegistryManagementClient


class StaticTokenCredential:
    """A TokenCredential handing out a fixed token (what a managed identity would provide)."""

    def __init__(self, token):
        self._token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self._token, int(time.time()) + 3600)


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"sdk_health_monitor.py: environment variable {name} is not set")
    return value


def main():
    client = ContainerRegistryManagementClient(
        credential=StaticTokenCredential(env("SIM_TOKEN")),
        subscription_id=env("SIM_SUBSCRIPTION"),
        base_url=env("SIM_ENDPOINT"),
        connection_verify=env("SIM_CA_CERT"),
    )
    started = time.perf_counter()
    states = collections.Counter()
    registries = 0
    for registry in client.registries.list():
        resource_group = registry.id.split("/")[4]
        for connection in client.private_endpoint_connections.list(resource_group, registry.name):
            state = connection.private_link_service_connection_state
            states[state.status if state else "Unknown"] += 1
        registries += 1
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "registries": registries,
                "connections": sum(states.values()),
                "states": dict(sorted(states.items())),
                "loop_seconds": elapsed,
            }
        )
    )


if __name__ == "__main__":
    main()
