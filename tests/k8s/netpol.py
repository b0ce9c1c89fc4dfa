"""A small NetworkPolicy evaluator: may pod A open a TCP connection to port P of pod B?

Kubernetes semantics, reduced to what the chart uses: a pod selected by no policy of a direction allows everything
in that direction; once a policy of that direction selects it (default deny), only the union of those policies'
rules is allowed. A connection needs both the source's egress and the destination's ingress. Peers match by
podSelector (the policy's namespace), namespaceSelector, or both; ipBlock never matches a pod. Ports match by
number or by the destination container's port name; a rule without ports allows every port.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)  # container port name -> number

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}  # what every namespace is labelled with


def selector_matches(selector: dict | None, labels: dict[str, str]) -> bool:
    """A LabelSelector; an empty one selects everything."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    return all(_expression_matches(expression, labels) for expression in selector.get("matchExpressions", []))


def _expression_matches(expression: dict, labels: dict[str, str]) -> bool:
    key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    raise ValueError(f"unknown selector operator {operator}")


def _policy_types(policy: dict) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or ["Ingress", *(["Egress"] if "egress" in spec else [])]


def _selects(policy: dict, pod: Pod) -> bool:
    return (policy["metadata"]["namespace"] == pod.namespace
            and selector_matches(policy["spec"].get("podSelector"), pod.labels))


def _peer_matches(peer: dict, policy_namespace: str, pod: Pod) -> bool:
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        in_namespace = selector_matches(peer["namespaceSelector"], pod.namespace_labels)
    else:
        in_namespace = pod.namespace == policy_namespace
    return in_namespace and selector_matches(peer.get("podSelector"), pod.labels)


def _port_matches(rule: dict, destination: Pod, port: int) -> bool:
    ports = rule.get("ports")
    if not ports:
        return True
    for allowed in ports:
        if allowed.get("protocol", "TCP") != "TCP":
            continue
        number = allowed.get("port")
        if number is None or number == port or destination.ports.get(str(number)) == port:
            return True
    return False


def _direction_allows(policies: list[dict], direction: str, subject: Pod, peer: Pod, destination: Pod,
                      port: int) -> bool:
    """Whether `subject`'s policies of `direction` ("Ingress" or "Egress") let the connection through."""
    relevant = [p for p in policies if direction in _policy_types(p) and _selects(p, subject)]
    if not relevant:
        return True
    peers_key = "from" if direction == "Ingress" else "to"
    for policy in relevant:
        for rule in policy["spec"].get(direction.lower(), []) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(_peer_matches(p, policy["metadata"]["namespace"], peer) for p in peers)
            if peer_ok and _port_matches(rule, destination, port):
                return True
    return False


def can_reach(policies: list[dict], source: Pod, destination: Pod, port: int) -> bool:
    return (_direction_allows(policies, "Egress", source, destination, destination, port)
            and _direction_allows(policies, "Ingress", destination, source, destination, port))
