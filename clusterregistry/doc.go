// Package clusterregistry turns registry Secrets on the hub into member
// clusters: it is a multicluster-runtime Provider over kubeconfig Secrets.
//
// A registry Secret lives in one namespace (Options.Namespace), carries the
// label example.com/member-cluster: "true" and holds a kubeconfig under the
// data key "kubeconfig". The cluster's name is the Secret's name and its
// labels are the Secret's labels; placement selects clusters by those labels.
//
// What the package owns:
//
//   - ValidateKubeconfig, the only kubeconfig parser in the repository. It
//     rejects exec and auth-provider plugins, file references, plain HTTP,
//     disabled TLS verification and forbidden hosts, with a fixed message that
//     never echoes the input, so that nothing of a kubeconfig reaches a log,
//     an error, an event or a status.
//   - Provider, which reconciles registry Secrets on the hub's local manager
//     and, per cluster, runs an asynchronous connect loop: build a
//     cluster.Cluster whose cache holds only objects this operator owns
//     (MemberCacheOptions), start it on the provider's long-lived context,
//     wait a bounded time for its cache to sync, retry with exponential
//     backoff, and only then Engage it with the multicluster manager.
//   - The registry view the hub needs for placement and status: List and
//     Lookup report every registered cluster, connected or not, with a State
//     (Connecting, Ready, Unreachable, Invalid) and an api/v1 reason; Subscribe
//     tells the hub when any of that changes.
//   - Health probing of connected clusters, concurrently and each bounded by a
//     timeout, so that one dead or black-holed member never delays the others.
//     Besides the periodic probe, Suspect probes a cluster at once when a
//     caller's request to it failed as unreachable (at most one probe per
//     cluster in flight; suspicions raised meanwhile are answered by it), so
//     that a black hole is reported within one probe timeout of the first
//     failed request rather than at the next tick.
//   - Credential rotation without a gap: a new kubeconfig for a Ready cluster
//     is connected and synced while the old connection keeps serving (and the
//     cluster stays Ready); only then is the old one disengaged. A cluster
//     that is not Ready is simply reconnected.
//   - Health annotations on each registry Secret (example.com/cluster-state,
//     -reason, -message, -last-transition), written by the Secret reconciler
//     only when a cluster's health changes, so that kubectl-hub and people can
//     read it from the hub without the operator.
//
// What it must not do: block a Secret reconcile on a member (the reconcile only
// validates and hands off to the connect loop), derive a cluster's lifetime
// from a reconcile context, write anything to a member, or import hub/ or
// member/. It never deletes anything: a cluster that leaves the registry is
// disengaged and forgotten, and what to do about its objects is the hub's call.
package clusterregistry
