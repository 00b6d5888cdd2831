// Package hub holds the MyResource reconciler that runs on the hub cluster.
//
// For each MyResource it resolves the placement against the cluster
// registry, fans out to the selected member clusters through package member
// with bounded concurrency and a per-cluster timeout, cleans up clusters that
// left the placement, and aggregates one status: a compact entry per
// cluster, selected/ready counts, and Ready/Degraded/Progressing conditions
// with observedGeneration. A converged reconcile writes nothing.
package hub
