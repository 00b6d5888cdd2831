package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	hubv1 "example.com/hub-operator/api/v1"
	"example.com/hub-operator/test/controlplane"
)

// Scenario (d) measures what Karmada's test report calls resource
// distribution latency: per (MyResource, member), from the hub write to the
// member's Deployment existing at that version, observed through a watch on
// each member and stamped on arrival. Once for a create and once for a
// change of the image, for the operator and, in the same run, for the
// client-go baseline. Karmada publishes P50 706 ms, P90 899 ms, P99 1,298 ms
// at 100 members in push mode against an SLO of P99 <= 2 s.
//
// The writes come one every distributionInterval, as a user's or a GitOps
// tool's would, not in one burst: a burst measures the queue in front of
// the members, not the distribution. The (d) members are lean API servers
// (controlplane.MemberOptions.Lean), so that a hundred fit on the machine.
var distributionScenarios = []scenario{
	{Name: "d-20", Members: 20, MyResources: 10, Distribution: true},
	{Name: "d-50", Members: 50, MyResources: 10, Distribution: true},
	{Name: "d-100", Members: 100, MyResources: 10, Distribution: true},
}

var distributionInterval = time.Duration(envInt("BENCH_D_INTERVAL_MS", 1000)) * time.Millisecond

// Images of the create and of the change.
const (
	createImage = "nginx:1.27"
	changeImage = "nginx:1.28"
)

// distributionResult is what (d) measures beside the result's common fields.
type distributionResult struct {
	IntervalSeconds float64   `json:"interval_seconds"`
	Create          latencies `json:"create"`
	Change          latencies `json:"image_change"`
	BaselineCreate  latencies `json:"baseline_create"`
	BaselineChange  latencies `json:"baseline_image_change"`
	// Writes and BaselineWrites count every write to the hub and the
	// members, by "VERB resource[/subresource]", from the first create to
	// the last image change's arrival (the benchmark's own image patches
	// included, ten on each side).
	Writes         map[string]float64 `json:"writes_by_resource"`
	BaselineWrites map[string]float64 `json:"baseline_writes_by_resource"`
	// Rounds are the P99s of each round; the latencies above pool them.
	Rounds  []distributionRound `json:"rounds"`
	Cost    cost                `json:"cost"`
	Startup startup             `json:"startup"`
	// StatusBytesPerCluster is the growth of a MyResource's status per
	// member it is placed on; StatusBytesAt1000 projects it to 1,000.
	StatusBytesPerCluster float64 `json:"status_bytes_per_cluster"`
	StatusBytesAt1000     float64 `json:"status_bytes_at_1000_clusters"`
	// ControlPlaneRSSBytes is every API server's and etcd's RSS: the test
	// bed, apart from the operator.
	ControlPlaneRSSBytes int64 `json:"control_plane_rss_bytes"`
}

// latencies are the samples of one measurement, sorted, and their quantiles.
type latencies struct {
	P50     float64   `json:"p50_seconds"`
	P90     float64   `json:"p90_seconds"`
	P99     float64   `json:"p99_seconds"`
	Max     float64   `json:"max_seconds"`
	Load    float64   `json:"load_average"`
	Samples []float64 `json:"samples_seconds"`
}

func newLatencies(samples []float64) latencies {
	slices.Sort(samples)
	l := latencies{Samples: samples, Load: loadAverage()}
	if len(samples) > 0 {
		l.P50, l.P90, l.P99 = nearestRank(samples, 0.5), nearestRank(samples, 0.9), nearestRank(samples, 0.99)
		l.Max = samples[len(samples)-1]
	}
	return l
}

func (e *benchEnv) runDistribution(ctx context.Context, bin string, s scenario) (result, error) {
	members := e.members[:s.Members]
	r := result{Scenario: s.Name, Members: s.Members, MyResources: s.MyResources, Distribution: &distributionResult{IntervalSeconds: distributionInterval.Seconds()}}
	d := r.Distribution
	var err error
	if d.ControlPlaneRSSBytes, err = e.controlPlaneRSS(); err != nil {
		return r, err
	}
	mk, err := startMarker(ctx, members)
	if err != nil {
		return r, err
	}
	defer mk.stop()
	var op, base []measured
	for round := range distributionRounds {
		rd := distributionRound{Round: round, BaselineFirst: round%2 == 1}
		sides := []func() error{
			func() error {
				m, err := e.operatorSide(ctx, bin, s, members, round, &r)
				op, rd.Operator = append(op, m), m.summary()
				return err
			},
			func() error {
				m, err := e.baselineSide(ctx, s, members, round)
				base, rd.Baseline = append(base, m), m.summary()
				return err
			},
		}
		if rd.BaselineFirst {
			slices.Reverse(sides)
		}
		for _, side := range sides {
			if err := side(); err != nil {
				return r, err
			}
		}
		logf("scenario %s round %d: %s", s.Name, round, rd)
		d.Rounds = append(d.Rounds, rd)
	}
	d.Create, d.Change, d.Writes = pool(op)
	d.BaselineCreate, d.BaselineChange, d.BaselineWrites = pool(base)
	logf("scenario %s: %s", s.Name, d)
	return r, e.deregister(ctx)
}

// The (d) measurement runs in rounds that alternate which side goes first,
// and pools their samples: on a machine this oversubscribed the load drifts
// within a run (one round's P99 differed from the next's by 3x), and a side
// that always ran second would always meet a bed that had just worked.
var distributionRounds = envInt("BENCH_D_ROUNDS", 2)

// profileFor is how long the CPU profile of (d) runs (BENCH_PROFILE).
var profileFor = time.Duration(envInt("BENCH_PROFILE_SECONDS", 30)) * time.Second

// measured is one side's measurement in one round.
type measured struct {
	create, change latencies
	writes         map[string]float64
}

func (m measured) summary() roundSide {
	return roundSide{CreateP99: m.create.P99, ChangeP99: m.change.P99, CreateLoad: m.create.Load, ChangeLoad: m.change.Load}
}

// distributionRound is what one round measured of each side.
type distributionRound struct {
	Round         int       `json:"round"`
	BaselineFirst bool      `json:"baseline_first"`
	Operator      roundSide `json:"operator"`
	Baseline      roundSide `json:"baseline"`
}

type roundSide struct {
	CreateP99  float64 `json:"create_p99_seconds"`
	ChangeP99  float64 `json:"image_change_p99_seconds"`
	CreateLoad float64 `json:"create_load_average"`
	ChangeLoad float64 `json:"image_change_load_average"`
}

func (rd distributionRound) String() string {
	return fmt.Sprintf("create P99 operator %.3fs baseline %.3fs, image P99 operator %.3fs baseline %.3fs (%s first)",
		rd.Operator.CreateP99, rd.Baseline.CreateP99, rd.Operator.ChangeP99, rd.Baseline.ChangeP99,
		map[bool]string{false: "operator", true: "baseline"}[rd.BaselineFirst])
}

// pool merges the rounds of one side: every sample, the highest load, the
// writes summed.
func pool(rounds []measured) (create, change latencies, writes map[string]float64) {
	var cs, ch []float64
	var cl, chl float64
	writes = map[string]float64{}
	for _, m := range rounds {
		cs, ch = append(cs, m.create.Samples...), append(ch, m.change.Samples...)
		cl, chl = max(cl, m.create.Load), max(chl, m.change.Load)
		for k, v := range m.writes {
			writes[k] += v
		}
	}
	create, change = newLatencies(cs), newLatencies(ch)
	create.Load, change.Load = cl, chl
	return create, change, writes
}

// baselineSide runs the baseline through one round of (d).
func (e *benchEnv) baselineSide(ctx context.Context, s scenario, members []*controlplane.Cluster, round int) (measured, error) {
	ns := fmt.Sprintf("base-%s-%d", s.Name, round)
	b, err := startBaseline(ctx, e.Hub, members, ns)
	if err != nil {
		return measured{}, err
	}
	var m measured
	m.create, m.change, m.writes, err = e.distribute(ctx, ns, s, members)
	b.stop()
	if err != nil {
		return m, fmt.Errorf("baseline: %w", err)
	}
	return m, e.cleanUp(ctx, ns, members)
}

// operatorSide runs the operator through one round of (d); the first
// round also measures its cost and a new leader's start-up.
func (e *benchEnv) operatorSide(ctx context.Context, bin string, s scenario, members []*controlplane.Cluster, round int, r *result) (measured, error) {
	ns := fmt.Sprintf("op-%s-%d", s.Name, round)
	if round == 0 {
		m, err := e.operatorDistribution(ctx, bin, s, members, ns, r)
		if err != nil {
			return m, fmt.Errorf("operator: %w", err)
		}
		return m, nil
	}
	op, om, err := e.startOperator(bin, s, 2+round) // 2 is the start-up measurement's
	if err != nil {
		return measured{}, err
	}
	defer func() { _ = op.Stop() }()
	var m measured
	if err = om.waitUp(ctx); err == nil {
		err = om.waitMembersReady(ctx, len(members))
	}
	if err == nil {
		m.create, m.change, m.writes, err = e.distribute(ctx, ns, s, members)
	}
	if err != nil {
		return m, fmt.Errorf("operator: %w (log: %s)", err, op.LogPath)
	}
	return m, e.cleanUp(ctx, ns, members)
}

// operatorDistribution runs the operator through (d) and measures what it
// costs, then replaces it by a new process over the converged objects to
// measure a new leader's start-up.
func (e *benchEnv) operatorDistribution(ctx context.Context, bin string, s scenario, members []*controlplane.Cluster, ns string, r *result) (measured, error) {
	d := r.Distribution
	var m measured
	op, om, err := e.startOperator(bin, s, 1)
	if err != nil {
		return m, err
	}
	defer func() { _ = op.Stop() }()
	if err := om.waitUp(ctx); err != nil {
		return m, fmt.Errorf("%w (log: %s)", err, op.LogPath)
	}
	before, err := om.usage(ctx)
	if err != nil {
		return m, err
	}
	r.Base = before.memory
	if err := e.register(ctx, members); err != nil {
		return m, fmt.Errorf("%w (log: %s)", err, op.LogPath)
	}
	if err := om.waitMembersReady(ctx, len(members)); err != nil {
		return m, fmt.Errorf("%w (log: %s)", err, op.LogPath)
	}
	connected, err := om.usage(ctx)
	if err != nil {
		return m, err
	}
	r.Connected = connected.memory
	wait := om.profile(ctx, s.Name, profileFor)
	m.create, m.change, m.writes, err = e.distribute(ctx, ns, s, members)
	wait()
	if err != nil {
		return m, fmt.Errorf("%w (log: %s)", err, op.LogPath)
	}
	if err := e.waitReady(ctx, ns, s.MyResources); err != nil {
		return m, fmt.Errorf("%w (log: %s)", err, op.LogPath)
	}
	final, err := om.usage(ctx)
	if err != nil {
		return m, err
	}
	r.Final = final.memory
	r.setMemoryModel()
	d.Cost = newCost(before, connected, final, s)
	if err := e.measureStatus(ctx, ns, s, r); err != nil {
		return m, err
	}
	if err := op.Stop(); err != nil {
		return m, err
	}
	if d.Startup, err = e.measureStartup(ctx, bin, s, members, ns); err != nil {
		return m, fmt.Errorf("start-up: %w", err)
	}
	return m, e.cleanUp(ctx, ns, members)
}

// distribute creates the scenario's MyResources in ns one every interval,
// waits for all of them to be Ready, then changes their image one every
// interval, and returns both sets of latencies once the change has arrived
// everywhere, with the writes it took. (The baseline writes a status once,
// for the create.)
func (e *benchEnv) distribute(ctx context.Context, ns string, s scenario, members []*controlplane.Cluster) (create, change latencies, writes map[string]float64, err error) {
	if err := createNamespace(ctx, e.Hub, ns); err != nil {
		return create, change, nil, err
	}
	clusters := append([]*controlplane.Cluster{e.Hub}, members...)
	before, err := snapshot(ctx, clusters)
	if err != nil {
		return create, change, nil, err
	}
	if create, change, err = e.createAndChange(ctx, ns, s, members); err != nil {
		return create, change, nil, err
	}
	after, err := snapshot(ctx, clusters)
	if err != nil {
		return create, change, nil, err
	}
	return create, change, after.since(before).tally(classMeasured).WritesBy, nil
}

// createAndChange is distribute's measurement, between its write counts.
func (e *benchEnv) createAndChange(ctx context.Context, ns string, s scenario, members []*controlplane.Cluster) (create, change latencies, err error) {
	sw, err := watchSightings(ctx, members, ns, func(d *appsv1.Deployment) string {
		return d.Name + "@" + d.Spec.Template.Spec.Containers[0].Image
	})
	if err != nil {
		return create, change, err
	}
	defer sw.stop()
	names := make([]string, len(members))
	for i, m := range members {
		names[i] = m.Name
	}
	mrs := make([]*hubv1.MyResource, s.MyResources)
	for i := range mrs {
		mrs[i] = myResource(ns, fmt.Sprintf("app-%04d", i), names)
	}
	wrote, err := writeEvery(ctx, mrs, func(mr *hubv1.MyResource) error { return e.Hub.Client.Create(ctx, mr) })
	if err != nil {
		return create, change, err
	}
	if create, err = sw.latencies(ctx, mrs, createImage, wrote, len(members)); err != nil {
		return create, change, err
	}
	if err := e.waitReady(ctx, ns, len(mrs)); err != nil {
		return create, change, err
	}
	wrote, err = writeEvery(ctx, mrs, func(mr *hubv1.MyResource) error {
		before := mr.DeepCopy()
		mr.Spec.Deployment.Template.Spec.Containers[0].Image = changeImage
		// A merge patch: the operator writes the status meanwhile.
		return e.Hub.Client.Patch(ctx, mr, client.MergeFrom(before))
	})
	if err != nil {
		return create, change, err
	}
	change, err = sw.latencies(ctx, mrs, changeImage, wrote, len(members))
	return create, change, err
}

// writeEvery makes one write per MyResource, one every
// distributionInterval, and returns when each was sent.
func writeEvery(ctx context.Context, mrs []*hubv1.MyResource, write func(*hubv1.MyResource) error) ([]time.Time, error) {
	wrote := make([]time.Time, len(mrs))
	tick := time.NewTicker(distributionInterval)
	defer tick.Stop()
	for i, mr := range mrs {
		if i > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-tick.C:
			}
		}
		wrote[i] = time.Now()
		if err := write(mr); err != nil {
			return nil, err
		}
	}
	return wrote, nil
}

// latencies waits until every MyResource's Deployment has arrived at image
// in every member and returns the latencies from each write.
func (sw *sightings) latencies(ctx context.Context, mrs []*hubv1.MyResource, image string, wrote []time.Time, members int) (latencies, error) {
	for _, mr := range mrs {
		if err := sw.waitCarried(ctx, mr.Name+"@"+image, members, convergeTimeout); err != nil {
			return latencies{}, err
		}
	}
	sw.mu.Lock()
	defer sw.mu.Unlock()
	samples := make([]float64, 0, len(mrs)*members)
	for i, mr := range mrs {
		for _, at := range sw.carried[mr.Name+"@"+image] {
			samples = append(samples, at.Sub(wrote[i]).Seconds())
		}
	}
	return newLatencies(samples), nil
}

// measureStatus sizes the status of MyResources placed on every member, and
// projects it to 1,000 clusters from its growth per member.
func (e *benchEnv) measureStatus(ctx context.Context, ns string, s scenario, r *result) error {
	var err error
	if r.StatusBytesPerMyResource, err = e.statusBytes(ctx, ns); err != nil {
		return err
	}
	var list hubv1.MyResourceList
	if err := e.Hub.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return err
	}
	// One entry's share: the whole status less what it holds without
	// entries, over the entries.
	empty := list.Items[0].Status.DeepCopy()
	empty.Clusters = nil
	fixed, err := jsonSize(empty)
	if err != nil {
		return err
	}
	d := r.Distribution
	d.StatusBytesPerCluster = round((r.StatusBytesPerMyResource-float64(fixed))/float64(s.Members), 1)
	d.StatusBytesAt1000 = round(float64(fixed)+1000*d.StatusBytesPerCluster, 0)
	return nil
}

func jsonSize(v any) (int, error) {
	b, err := json.Marshal(v)
	return len(b), err
}

// controlPlaneRSS sums the RSS of every API server and etcd of the bed.
func (e *benchEnv) controlPlaneRSS() (int64, error) {
	var total int64
	for _, env := range append([]*controlplane.Env{e.Env}, e.batches...) {
		for _, pid := range env.Pids() {
			rss, err := rssBytes(pid)
			if err != nil {
				return 0, err
			}
			total += rss
		}
	}
	return total, nil
}

func (d *distributionResult) String() string {
	f := func(l latencies) string {
		return fmt.Sprintf("p50 %.3fs p90 %.3fs p99 %.3fs (n %d, load %.1f)", l.P50, l.P90, l.P99, len(l.Samples), l.Load)
	}
	return fmt.Sprintf("create: operator %s, baseline %s; image: operator %s, baseline %s; writes: operator %v, baseline %v; %s; start-up %s; status %.0f B/cluster, %.0f B at 1,000; control planes %.1f MiB",
		f(d.Create), f(d.BaselineCreate), f(d.Change), f(d.BaselineChange), d.Writes, d.BaselineWrites, d.Cost, d.Startup,
		d.StatusBytesPerCluster, d.StatusBytesAt1000, mib(float64(d.ControlPlaneRSSBytes)))
}

func printDistributions(w io.Writer, results []result) {
	for _, r := range results {
		if r.Distribution != nil {
			fmt.Fprintf(w, "distribution %s (%d members x %d MyResources, one write every %.1f s): %s\n",
				r.Scenario, r.Members, r.MyResources, r.Distribution.IntervalSeconds, r.Distribution)
		}
	}
}
