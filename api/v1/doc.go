// Package v1 holds the MyResource API (group example.com, version v1): the
// spec a platform engineer writes on the hub and the status the operator
// aggregates from every member cluster. Condition types and reasons are typed
// constants here so that the hub reconciler, the kubectl plugin and the tests
// share one spelling.
//
// +kubebuilder:object:generate=true
// +groupName=example.com
package v1
