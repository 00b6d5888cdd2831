// Package controlplane starts real Kubernetes control planes for tests, the
// demo and the benchmarks: a hub and N member clusters, each a real etcd and
// kube-apiserver process (built from the Go module proxy into bin/), and, for
// members that opt in, kube-controller-manager, kube-scheduler and kwok fake
// nodes so that Deployments really roll out and become Available.
//
// It manages the processes itself rather than through envtest because tests
// need what envtest does not give: an API server that stops and restarts on
// the same address with its data, members sharing one etcd under distinct
// prefixes, a TCP proxy that black-holes a member, and children that die with
// the test process even when it panics or is killed (Pdeathsig).
package controlplane
