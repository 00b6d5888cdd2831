package clusterregistry_test

import (
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"example.com/hub-operator/clusterregistry"
	"example.com/hub-operator/test/controlplane"
)

// TestSuspectProbesAtOnceAndCoalesces runs with a probe interval far longer
// than the test, so every state change it sees comes from Suspect.
func TestSuspectProbesAtOnceAndCoalesces(t *testing.T) {
	env := controlplane.StartForTest(t, controlplane.Options{Members: []controlplane.MemberOptions{{Name: "m1", Proxy: true}}})
	ctx := t.Context()
	m1 := env.Member("m1")
	const probeTimeout = time.Second
	probes := &probeLog{}
	provider := clusterregistry.New(clusterregistry.Options{
		Namespace:        registryNamespace,
		ForbiddenHosts:   []string{env.Hub.Host()},
		ProbeInterval:    time.Hour,
		ProbeTimeout:     probeTimeout,
		CacheSyncTimeout: 5 * time.Second,
		ObserveProbe:     probes.observe,
	})
	mgr := newProviderManager(t, env, provider)
	if err := mgr.Add(&engagements{}); err != nil {
		t.Fatal(err)
	}
	if err := env.Register(ctx, m1, registryNamespace, nil); err != nil {
		t.Fatal(err)
	}
	startManager(t, mgr)
	state := func() clusterregistry.State { return states(provider)["m1"] }

	g := NewWithT(t)
	g.Eventually(state).WithContext(ctx).WithTimeout(wait).WithPolling(poll).Should(Equal(clusterregistry.StateReady))
	provider.Suspect("unknown") // not registered: nothing to do, and no panic

	t.Run("a black hole is noticed only when suspected, within one probe timeout", func(t *testing.T) {
		g := NewWithT(t)
		m1.Proxy.Cut()
		t.Cleanup(m1.Proxy.Restore)
		g.Consistently(state).WithTimeout(2 * probeTimeout).WithPolling(poll).Should(Equal(clusterregistry.StateReady))

		before := probes.count("m1")
		suspected := time.Now()
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() { provider.Suspect("m1") })
		}
		wg.Wait()
		g.Eventually(state).WithTimeout(probeTimeout + 5*time.Second).WithPolling(poll / 10).Should(Equal(clusterregistry.StateUnreachable))
		t.Logf("Unreachable %s after Suspect (probe timeout %s)", time.Since(suspected).Round(time.Millisecond), probeTimeout)
		g.Consistently(func() int { return probes.count("m1") - before }).WithTimeout(2*probeTimeout).WithPolling(poll).
			Should(BeNumerically("<=", 2), "50 concurrent suspicions cost one probe (two if one was picked up mid-burst)")
		t.Logf("probes for 50 concurrent suspicions: %d", probes.count("m1")-before)
	})

	t.Run("a suspicion after the member is back turns it Ready again", func(t *testing.T) {
		g := NewWithT(t)
		m1.Proxy.Restore()
		// Suspected again on every poll: on a loaded machine one probe may
		// miss its 1 s timeout even though the member is back.
		g.Eventually(func() clusterregistry.State {
			provider.Suspect("m1")
			return state()
		}).WithTimeout(wait).WithPolling(poll).Should(Equal(clusterregistry.StateReady))
	})
}

// count is the number of the cluster's probes so far, failed ones included.
func (l *probeLog) count(cluster string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.results {
		if r.cluster == cluster {
			n++
		}
	}
	return n
}
