package suite

import (
	"github.com/onsi/gomega"

	"example.com/hub-operator/test/controlplane"
)

// AuditedSince returns the operator's requests to c recorded after the
// first skip entries of its audit log, filtered by keep.
func AuditedSince(g gomega.Gomega, c *controlplane.Cluster, skip int, keep func(controlplane.AuditEvent) bool) []controlplane.AuditEvent {
	events, err := c.AuditEvents()
	g.Expect(err).NotTo(gomega.HaveOccurred())
	var out []controlplane.AuditEvent
	for _, e := range events[min(skip, len(events)):] {
		if keep(e) {
			out = append(out, e)
		}
	}
	return out
}

// AuditLen is the number of audited operator requests to c so far, a mark
// for AuditedSince.
func AuditLen(g gomega.Gomega, c *controlplane.Cluster) int {
	events, err := c.AuditEvents()
	g.Expect(err).NotTo(gomega.HaveOccurred())
	return len(events)
}
