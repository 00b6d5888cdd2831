// Package e2e drives the real hub-operator binary through the contract of
// DESIGN.md, on a real hub and three real member clusters with fake nodes
// (package controlplane): placement, overrides, drift, conflicts, suspend,
// deletion, bad kubeconfigs, dead members and writes at rest.
package e2e
