// Package eventmirror is a small controller beside the MyResource
// reconciler: member Warning events about the objects a MyResource owns
// (its Deployment, that Deployment's ReplicaSets and Pods) become events on
// the hub MyResource, prefixed with the cluster's name, one hub event per
// member event, rate-limited per MyResource.
//
// It is a package of its own because it shares no state with the
// reconciler in package hub: it watches member Events (not MyResources),
// reads the hub only to find the owner, and writes only hub Events. What it
// knows of a member event (its owner, its message) comes from package
// member. It never imports package hub and writes nothing to a member.
package eventmirror
