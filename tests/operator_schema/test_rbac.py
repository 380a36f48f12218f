"""Least privilege of the operator: the ClusterRole grants exactly the reviewed list.

A new grant fails this test until it is added to ``REVIEWED`` with a reason, in
the same change as the code that needs it (and a comment on the rule in
deploy/manifests/rbac.yaml).
"""

from __future__ import annotations

from typing import Any

from .conftest import DEPLOY, load_documents

# (api group, resource, verb) -> why the operator needs it.
REVIEWED = {
    ("csgen.dev", "clickstreamgenerators", "get"): "kopf reads the resource",
    ("csgen.dev", "clickstreamgenerators", "list"): "kopf lists resources at startup",
    ("csgen.dev", "clickstreamgenerators", "watch"): "kopf follows resources",
    ("csgen.dev", "clickstreamgenerators", "patch"): "kopf's finalizer and annotations",
    ("csgen.dev", "clickstreamgenerators/status", "get"): "reads its own report",
    ("csgen.dev", "clickstreamgenerators/status", "patch"): "writes the status",
    ("csgen.dev", "clickstreamgenerators/finalizers", "update"): "blockOwnerDeletion",
    ("apps", "statefulsets", "get"): "reads the fleet",
    ("apps", "statefulsets", "create"): "the first apply creates it",
    ("apps", "statefulsets", "patch"): "server-side apply of the fleet",
    ("", "services", "get"): "reads the headless Service",
    ("", "services", "create"): "the first apply creates it",
    ("", "services", "patch"): "server-side apply of the Service",
    ("", "secrets", "get"): "reads the API token it created",
    ("", "secrets", "create"): "creates the API token",
    ("", "pods", "get"): "a pod's address",
    ("", "pods", "list"): "the fleet's pods",
    ("", "pods", "watch"): "pod readiness",
    ("", "events", "create"): "kopf posts core/v1 events",
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"): "kopf's resource scan",
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"): "kopf's resource scan",
    ("", "namespaces", "list"): "kopf in cluster-wide mode",
    ("", "namespaces", "watch"): "kopf in cluster-wide mode",
    ("kopf.dev", "kopfpeerings", "list"): "peering of namespace-scoped operators",
    ("kopf.dev", "kopfpeerings", "watch"): "peering of namespace-scoped operators",
    ("kopf.dev", "kopfpeerings", "patch"): "peering of namespace-scoped operators",
    ("kopf.dev", "clusterkopfpeerings", "list"): "peering",
    ("kopf.dev", "clusterkopfpeerings", "watch"): "peering",
    ("kopf.dev", "clusterkopfpeerings", "patch"): "peering keep-alive records",
}


def _rbac_documents() -> list[dict[str, Any]]:
    return load_documents(DEPLOY / "manifests" / "rbac.yaml")


def _cluster_role() -> dict[str, Any]:
    (role,) = [doc for doc in _rbac_documents() if doc["kind"] == "ClusterRole"]
    return role


def _grants(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_the_cluster_role_grants_exactly_the_reviewed_list() -> None:
    grants = _grants(_cluster_role())
    assert sorted(grants - REVIEWED.keys()) == [], "unreviewed grants"
    assert sorted(REVIEWED.keys() - grants) == [], "reviewed grants no longer given"


def test_no_rule_uses_wildcards_names_or_non_resource_urls() -> None:
    for rule in _cluster_role()["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule
        for values in rule.values():
            assert "*" not in values, rule


def test_no_secret_is_listed_watched_or_deleted_and_nothing_is_deleted() -> None:
    grants = _grants(_cluster_role())
    secret_verbs = {verb for _, resource, verb in grants if resource == "secrets"}
    assert secret_verbs.isdisjoint({"list", "watch", "delete", "deletecollection"})
    dangerous = {"delete", "deletecollection", "escalate", "bind", "impersonate"}
    assert [grant for grant in grants if grant[2] in dangerous] == []


def test_the_binding_gives_the_role_to_the_operators_service_account() -> None:
    documents = {doc["kind"]: doc for doc in _rbac_documents()}
    binding = documents["ClusterRoleBinding"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": _cluster_role()["metadata"]["name"],
    }
    account = documents["ServiceAccount"]["metadata"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["name"], "namespace": account["namespace"]}
    ]
    (deployment,) = load_documents(DEPLOY / "manifests" / "operator.yaml")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == account["name"]
