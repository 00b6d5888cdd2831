// Package member owns everything that touches ONE member cluster: it renders
// the desired Namespace, Deployment and Service for a (MyResource, cluster)
// pair, writes them with server-side apply under the field manager
// hub-operator, reads back a compact ClusterStatus, deletes what it owns, and
// maps the member's Warning events about owned objects to their MyResource
// (OwnedEvent) for the hub to mirror.
//
// The package is deliberately cluster-agnostic: a Target carries the
// cluster's name, labels and clients, so the hub decides which clusters to
// visit, with what concurrency and timeout, and this package never looks at
// more than one of them per call. It imports api/v1 and never hub/.
//
// Three rules hold everywhere in it:
//
//   - Zero writes at rest. Objects are rendered as typed apply
//     configurations and written with server-side apply; an apply is skipped
//     by intent, not by diff: when the same configuration was applied before
//     and the member object is still the version that apply left (its
//     generation or resourceVersion, and our labels and annotations). So
//     what the member adds of its own (defaults, a webhook's sidecar) is
//     never fought, and any later change to the object is applied over.
//     Reads at rest come from the cluster's cache of owned objects. A new
//     process applies each object once, a no-op for the member.
//   - Never take over. A Deployment or Service of the right name that
//     hub-operator did not create is left untouched and reported as a
//     *ConflictError naming its field managers.
//   - Never delete the Namespace, and delete a Deployment or Service only when
//     it is ours for the owner being cleaned up.
//
// Errors are classified with Reason into the contract's condition reasons,
// and invalid user input is an *InvalidSpecError the hub treats as permanent.
package member
