package main

import (
	"context"
	"fmt"
	"math"
	"time"

	dto "github.com/prometheus/client_model/go"

	"example.com/hub-operator/test/controlplane"
)

// usage is what the operator process holds and has spent at one moment.
type usage struct {
	memory
	cpuSeconds float64
	goroutines float64
	fds        int
	sockets    int
}

func (o *operatorMetrics) usage(ctx context.Context) (usage, error) {
	m, err := o.memory(ctx)
	if err != nil {
		return usage{}, err
	}
	u := usage{memory: m}
	f, err := o.scrape(ctx)
	if err != nil {
		return u, err
	}
	u.goroutines = gauge(f, "go_goroutines")
	if u.cpuSeconds, err = cpuSeconds(o.pid); err != nil {
		return u, err
	}
	u.fds, u.sockets, err = openFiles(o.pid)
	return u, err
}

// cost is the operator's cost per unit of work in (d). A unit is one
// MyResource converged on one member; (d) converges each twice (the create
// and the image change).
type cost struct {
	CPUSecondsPerUnit   float64 `json:"cpu_seconds_per_myresource_member"`
	RSSBytesPerMember   float64 `json:"rss_bytes_per_member"`
	RSSBytesPerUnit     float64 `json:"rss_bytes_per_myresource_member"`
	GoroutinesPerMember float64 `json:"goroutines_per_member"`
	SocketsPerMember    float64 `json:"sockets_per_member"`
	FDsPerMember        float64 `json:"fds_per_member"`
}

func newCost(before, connected, final usage, s scenario) cost {
	members, units := float64(s.Members), float64(s.Members*s.MyResources)
	return cost{
		CPUSecondsPerUnit:   round((final.cpuSeconds-connected.cpuSeconds)/(2*units), 5),
		RSSBytesPerMember:   math.Round(float64(connected.RSSBytes-before.RSSBytes) / members),
		RSSBytesPerUnit:     math.Round(float64(final.RSSBytes-connected.RSSBytes) / units),
		GoroutinesPerMember: round((connected.goroutines-before.goroutines)/members, 1),
		SocketsPerMember:    round(float64(connected.sockets-before.sockets)/members, 2),
		FDsPerMember:        round(float64(connected.fds-before.fds)/members, 2),
	}
}

func (c cost) String() string {
	return fmt.Sprintf("operator %.4f CPU s per MyResource x member converged, RSS %.2f MiB per member and %.1f KiB per MyResource x member, %.1f goroutines, %.2f sockets and %.2f fds per member",
		c.CPUSecondsPerUnit, c.RSSBytesPerMember/(1<<20), c.RSSBytesPerUnit/1024, c.GoroutinesPerMember, c.SocketsPerMember, c.FDsPerMember)
}

// startup is a new leader's start over converged objects.
type startup struct {
	// Seconds runs from the process's start to every member Ready in its
	// registry, every MyResource reconciled and its queue drained.
	Seconds    float64            `json:"seconds"`
	Reconciles float64            `json:"reconciles"`
	Writes     int                `json:"writes"`
	WritesBy   map[string]float64 `json:"writes_by_resource"`
}

func (s startup) String() string {
	return fmt.Sprintf("%.1fs, %.0f reconciles, %d writes %v", s.Seconds, s.Reconciles, s.Writes, s.WritesBy)
}

// measureStartup starts a new operator process over the converged
// MyResources in ns and counts every write it makes, to any API server,
// until it has reconciled them all and settled.
func (e *benchEnv) measureStartup(ctx context.Context, bin string, s scenario, members []*controlplane.Cluster, ns string) (startup, error) {
	clusters := append([]*controlplane.Cluster{e.Hub}, members...)
	before, err := snapshot(ctx, clusters)
	if err != nil {
		return startup{}, err
	}
	start := time.Now()
	op, om, err := e.startOperator(bin, s, 2)
	if err != nil {
		return startup{}, err
	}
	defer func() { _ = op.Stop() }()
	if err := om.waitUp(ctx); err != nil {
		return startup{}, fmt.Errorf("%w (log: %s)", err, op.LogPath)
	}
	reconciles, err := om.waitReconciled(ctx, len(members), s.MyResources, connectTimeout)
	if err != nil {
		return startup{}, fmt.Errorf("%w (log: %s)", err, op.LogPath)
	}
	took := time.Since(start)
	if err := sleep(ctx, 2*settle); err != nil {
		return startup{}, err
	}
	after, err := snapshot(ctx, clusters)
	if err != nil {
		return startup{}, err
	}
	t := after.since(before).tally(classMeasured)
	return startup{Seconds: round(took.Seconds(), 2), Reconciles: reconciles, Writes: int(t.Writes), WritesBy: t.WritesBy}, e.waitReady(ctx, ns, s.MyResources)
}

// waitReconciled waits until the operator has every member Ready, has
// reconciled at least n MyResources and has nothing queued or in flight.
func (o *operatorMetrics) waitReconciled(ctx context.Context, members, n int, timeout time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		f, err := o.scrape(ctx)
		if err == nil {
			ready := countReady(f)
			depth := valueFor(f, "workqueue_depth", "name", "myresource")
			active := valueFor(f, "controller_runtime_active_workers", "controller", "myresource")
			reconciles := valueFor(f, "controller_runtime_reconcile_total", "controller", "myresource")
			if ready >= members && depth == 0 && active == 0 && reconciles >= float64(n) {
				return reconciles, nil
			}
			last = fmt.Sprintf("%d/%d members Ready, %.0f queued, %.0f in flight, %.0f reconciles", ready, members, depth, active, reconciles)
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return 0, fmt.Errorf("%s: %w", last, err)
		}
	}
}

// valueFor sums the family's counters or gauges whose label key is value.
func valueFor(f map[string]*dto.MetricFamily, family, key, value string) float64 {
	total := 0.0
	for _, m := range f[family].GetMetric() {
		if labels(m)[key] == value {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return total
}

func countReady(f map[string]*dto.MetricFamily) int {
	ready := 0
	for _, m := range f["hub_operator_member_cluster_ready"].GetMetric() {
		if m.GetGauge().GetValue() == 1 {
			ready++
		}
	}
	return ready
}
