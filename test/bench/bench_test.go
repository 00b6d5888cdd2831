package main

import (
	"math"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/utils/ptr"
)

// The benchmark itself never runs under `go test`: these check the
// arithmetic its numbers come from.

func TestQuantileInterpolatesWithinTheBucketHoldingTheRank(t *testing.T) {
	h := &dto.Histogram{
		SampleCount: ptr.To[uint64](100),
		Bucket: []*dto.Bucket{
			{UpperBound: ptr.To(0.1), CumulativeCount: ptr.To[uint64](50)},
			{UpperBound: ptr.To(0.5), CumulativeCount: ptr.To[uint64](90)},
			{UpperBound: ptr.To(1.0), CumulativeCount: ptr.To[uint64](100)},
			{UpperBound: ptr.To(math.Inf(1)), CumulativeCount: ptr.To[uint64](100)},
		},
	}
	for _, tt := range []struct {
		q, want float64
	}{
		{q: 0.5, want: 0.1},
		{q: 0.7, want: 0.3},
		{q: 0.99, want: 0.95},
	} {
		if got := quantile(h, tt.q); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("quantile(%v) = %v, want %v", tt.q, got, tt.want)
		}
	}
}

func TestTallyCountsOnlyTheMeasuredComponentsWrites(t *testing.T) {
	before := requests{
		{Cluster: "hub", Verb: "PATCH", Resource: "myresources", Subresource: "status"}: 10,
	}
	after := requests{
		{Cluster: "hub", Verb: "PATCH", Resource: "myresources", Subresource: "status"}: 12,
		{Cluster: "hub", Verb: "POST", Resource: "myresources"}:                         5, // the benchmark's creates
		{Cluster: "hub", Verb: "PUT", Resource: "leases"}:                               7,
		{Cluster: "m1", Verb: "APPLY", Resource: "deployments"}:                         3,
		{Cluster: "m1", Verb: "PATCH", Resource: "deployments", Subresource: "status"}:  3, // the marker
		{Cluster: "m1", Verb: "POST", Resource: "ipaddresses"}:                          1, // the API server's own
		{Cluster: "m1", Verb: "GET", Resource: "deployments"}:                           4,
	}
	diff := after.since(before)
	got := diff.tally(classMeasured)
	if got.Writes != 5 {
		t.Errorf("writes = %v, want 5 (2 status patches, 3 applies): %v", got.Writes, got.WritesBy)
	}
	if got.ByVerb["GET"] != 4 {
		t.Errorf("GETs = %v, want 4", got.ByVerb["GET"])
	}
	if leases := diff.tally(classLease).Writes; leases != 7 {
		t.Errorf("lease writes = %v, want 7", leases)
	}
}
