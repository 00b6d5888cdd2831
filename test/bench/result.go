package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
)

// result is one scenario's line of results.json.
type result struct {
	Scenario    string `json:"scenario"`
	Members     int    `json:"members"`
	MyResources int    `json:"myresources"`
	// Rollout is set by the rollout scenario (r) alone.
	Rollout *rolloutResult `json:"rollout,omitempty"`
	// Distribution is set by the distribution scenarios (d) alone.
	Distribution *distributionResult `json:"distribution,omitempty"`

	// OperatorSeconds and BaselineSeconds run from the first MyResource
	// create to the last MyResource Ready: the fastest of the rounds, which
	// alternate operator and baseline (the samples and the machine's load
	// average at the end of each are kept).
	OperatorSeconds        float64   `json:"operator_seconds"`
	BaselineSeconds        float64   `json:"baseline_seconds"`
	Ratio                  float64   `json:"ratio"`
	OperatorSecondsSamples []float64 `json:"operator_seconds_samples"`
	BaselineSecondsSamples []float64 `json:"baseline_seconds_samples"`
	OperatorLoadSamples    []float64 `json:"operator_load_average_samples"`
	BaselineLoadSamples    []float64 `json:"baseline_load_average_samples"`

	// Writes are counted on every API server from apiserver_request_total,
	// without Lease renewals, the marker's Deployment status patches, the
	// benchmark's MyResource creates and the reviews metrics scrapes cause.
	WritesPerMRPerMember    float64 `json:"writes_per_myresource_per_member"`
	MinWritesPerMRPerMember float64 `json:"min_writes_per_myresource_per_member"`
	WritesRatio             float64 `json:"writes_ratio"`
	// RequestsByVerb are all requests (reads too) per MyResource per member.
	RequestsByVerb         map[string]float64 `json:"requests_per_myresource_per_member_by_verb"`
	BaselineRequestsByVerb map[string]float64 `json:"baseline_requests_per_myresource_per_member_by_verb"`
	// WritesBy and BaselineWritesBy are absolute write counts by verb and resource.
	WritesBy         map[string]float64 `json:"writes_by_resource"`
	BaselineWritesBy map[string]float64 `json:"baseline_writes_by_resource"`

	// WritesAtRest are the writes (but Lease renewals) to any API server in
	// RestSeconds after convergence; LeaseRenewalsAtRest are the operator's
	// leader-election Lease's; LeaseWritesAllServersAtRest adds the API
	// servers' own identity Leases.
	WritesAtRest                int                `json:"writes_at_rest"`
	WritesAtRestBy              map[string]float64 `json:"writes_at_rest_by_resource"`
	LeaseRenewalsAtRest         int                `json:"lease_renewals_at_rest"`
	LeaseWritesAllServersAtRest int                `json:"lease_writes_all_servers_at_rest"`
	RestSeconds                 float64            `json:"rest_seconds"`

	// Memory of the hub operator: Base before any member is registered,
	// Connected once the members are connected (caches synced, empty of
	// MyResource objects), Final after convergence and rest.
	Base      memory `json:"memory_base"`
	Connected memory `json:"memory_connected"`
	Final     memory `json:"memory_final"`
	RSSBytes  int64  `json:"rss_bytes"`
	HeapBytes int64  `json:"heap_inuse_bytes"`
	// RSSBytesPerMember is (Final - Base) / members: what each member
	// cluster costs, its share of the MyResources' objects included.
	RSSBytesPerMember  float64 `json:"rss_bytes_per_member"`
	HeapBytesPerMember float64 `json:"heap_bytes_per_member"`
	// HeapBytesPerMRPerMember is (Final - Connected) heap per MyResource per member.
	HeapBytesPerMRPerMember float64 `json:"heap_bytes_per_myresource_per_member"`

	ReconcileP50Seconds      float64 `json:"reconcile_p50_seconds"`
	ReconcileP99Seconds      float64 `json:"reconcile_p99_seconds"`
	Reconciles               float64 `json:"reconciles"`
	StatusBytesPerMyResource float64 `json:"status_bytes_per_myresource"`
}

func (r *result) units() float64 { return float64(r.MyResources * r.Members) }

func (r *result) setOperator(p phase) {
	r.WritesPerMRPerMember = round(p.counts.Writes/r.units(), 3)
	r.RequestsByVerb = perUnit(p.counts.ByVerb, r.units())
	r.WritesBy = p.counts.WritesBy
}

func (r *result) setBaseline(p phase) {
	r.MinWritesPerMRPerMember = round(p.counts.Writes/r.units(), 3)
	r.WritesRatio = round(r.WritesPerMRPerMember/r.MinWritesPerMRPerMember, 2)
	r.BaselineRequestsByVerb = perUnit(p.counts.ByVerb, r.units())
	r.BaselineWritesBy = p.counts.WritesBy
}

func (r *result) addRound(op, base phase) {
	r.OperatorSecondsSamples = append(r.OperatorSecondsSamples, round(op.seconds, 2))
	r.BaselineSecondsSamples = append(r.BaselineSecondsSamples, round(base.seconds, 2))
	r.OperatorLoadSamples = append(r.OperatorLoadSamples, op.load)
	r.BaselineLoadSamples = append(r.BaselineLoadSamples, base.load)
}

func (r *result) setTimes() {
	r.OperatorSeconds = slices.Min(r.OperatorSecondsSamples)
	r.BaselineSeconds = slices.Min(r.BaselineSecondsSamples)
	r.Ratio = round(r.OperatorSeconds/r.BaselineSeconds, 2)
}

func (r *result) setMemoryModel() {
	r.RSSBytes, r.HeapBytes = r.Final.RSSBytes, r.Final.HeapInuseBytes
	m := float64(r.Members)
	r.RSSBytesPerMember = math.Round(float64(r.Final.RSSBytes-r.Base.RSSBytes) / m)
	r.HeapBytesPerMember = math.Round(float64(r.Final.HeapInuseBytes-r.Base.HeapInuseBytes) / m)
	r.HeapBytesPerMRPerMember = math.Round(float64(r.Final.HeapInuseBytes-r.Connected.HeapInuseBytes) / r.units())
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

func mib(b float64) float64 { return round(b/(1<<20), 1) }

func printTable(w io.Writer, results []result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tmembers\tMyRs\toperator s\tbaseline s\tratio\twrites/MyR/member\tmin\tat rest\tleases at rest\tRSS MiB\tRSS MiB/member\theap MiB\treconcile p50 s\tp99 s\tstatus B/MyR\t")
	for _, r := range results {
		if r.Rollout != nil || r.Distribution != nil {
			continue // printRollouts, printDistributions
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.1f\t%.2f\t%.2f\t%.2f\t%d\t%d\t%.1f\t%.1f\t%.1f\t%.3f\t%.3f\t%.0f\t\n",
			r.Scenario, r.Members, r.MyResources, r.OperatorSeconds, r.BaselineSeconds, r.Ratio,
			r.WritesPerMRPerMember, r.MinWritesPerMRPerMember, r.WritesAtRest, r.LeaseRenewalsAtRest,
			mib(float64(r.RSSBytes)), mib(r.RSSBytesPerMember), mib(float64(r.HeapBytes)),
			r.ReconcileP50Seconds, r.ReconcileP99Seconds, r.StatusBytesPerMyResource)
	}
	_ = tw.Flush()
}

func hasSweep(results []result) bool {
	for _, r := range results {
		if isSweep(r) {
			return true
		}
	}
	return false
}

func isSweep(r result) bool { return len(r.Scenario) > 2 && r.Scenario[:2] == "c-" }

func hasDistribution(results []result) bool {
	for _, r := range results {
		if r.Distribution != nil {
			return true
		}
	}
	return false
}
