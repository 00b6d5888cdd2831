package hub

import (
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	hubv1 "example.com/hub-operator/api/v1"
)

func TestCollectAsksForTheSoonestRecheck(t *testing.T) {
	g := NewWithT(t)
	_, recheck, retry := collect(map[string]clusterResult{
		"a": {status: hubv1.ClusterStatus{Name: "a"}},
		"b": {status: hubv1.ClusterStatus{Name: "b"}, recheck: conflictRecheck},
		"c": {status: hubv1.ClusterStatus{Name: "c"}, recheck: unreachableRecheck},
	})
	g.Expect(recheck).To(Equal(unreachableRecheck), "a timed-out member is tried again before a conflict is re-read")
	g.Expect(retry).NotTo(HaveOccurred())

	_, recheck, retry = collect(map[string]clusterResult{
		"a": {status: hubv1.ClusterStatus{Name: "a"}},
		"b": {status: hubv1.ClusterStatus{Name: "b"}, retry: errors.New("quota")},
	})
	g.Expect(recheck).To(BeZero(), "nothing asked for a recheck")
	g.Expect(retry).To(MatchError("quota"))

	g.Expect(sooner(0, time.Second)).To(Equal(time.Second))
	g.Expect(sooner(time.Second, 0)).To(Equal(time.Second))
	g.Expect(sooner(2*time.Second, time.Second)).To(Equal(time.Second))
}
