package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// operatorMetrics reads the operator's own numbers: its metrics endpoint
// (HTTPS, authenticated by a ServiceAccount token) and its /proc entry.
type operatorMetrics struct {
	url, token string
	hc         *http.Client
	pid        int
	// pprof is the operator's /debug/pprof URL when profileDir is set.
	pprof string
}

// memory is the operator's footprint at one moment.
type memory struct {
	RSSBytes       int64 `json:"rss_bytes"`
	HeapInuseBytes int64 `json:"heap_inuse_bytes"`
}

func (o *operatorMetrics) scrape(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return scrape(ctx, o.hc, o.url, o.token)
}

// waitUp waits a minute at most for the metrics endpoint to answer.
func (o *operatorMetrics) waitUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		_, err := o.scrape(ctx)
		if err == nil {
			return nil
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("operator metrics endpoint: %w", err)
		}
	}
}

func (o *operatorMetrics) memory(ctx context.Context) (memory, error) {
	f, err := o.scrape(ctx)
	if err != nil {
		return memory{}, err
	}
	rss, err := rssBytes(o.pid)
	if err != nil {
		return memory{}, err
	}
	return memory{RSSBytes: rss, HeapInuseBytes: int64(gauge(f, "go_memstats_heap_inuse_bytes"))}, nil
}

func gauge(f map[string]*dto.MetricFamily, name string) float64 {
	if fam := f[name]; fam != nil && len(fam.GetMetric()) > 0 {
		return fam.GetMetric()[0].GetGauge().GetValue()
	}
	return 0
}

// rssBytes reads VmRSS from /proc/<pid>/status.
func rssBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for pid %d", pid)
}

// cpuSeconds is the process's utime+stime from /proc/<pid>/stat.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces; the fields after it do not.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	// utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
	ut, err := strconv.ParseFloat(fields[11], 64)
	if err != nil {
		return 0, err
	}
	st, err := strconv.ParseFloat(fields[12], 64)
	if err != nil {
		return 0, err
	}
	return (ut + st) / clockTicks, nil
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// openFiles counts the process's open file descriptors and, of those, its
// sockets: a member's connections are its sockets.
func openFiles(pid int) (fds, sockets int, err error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, err
	}
	for _, e := range entries {
		if target, err := os.Readlink(dir + "/" + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			sockets++
		}
	}
	return len(entries), sockets, nil
}

// reconcileLatency reads the MyResource controller's reconcile histogram.
func (o *operatorMetrics) reconcileLatency(ctx context.Context) (p50, p99, count float64, err error) {
	f, err := o.scrape(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	fam := f["controller_runtime_reconcile_time_seconds"]
	if fam == nil {
		return 0, 0, 0, fmt.Errorf("no controller_runtime_reconcile_time_seconds")
	}
	for _, m := range fam.GetMetric() {
		if labels(m)["controller"] == "myresource" {
			h := m.GetHistogram()
			return quantile(h, 0.5), quantile(h, 0.99), float64(h.GetSampleCount()), nil
		}
	}
	return 0, 0, 0, fmt.Errorf("no reconcile histogram for controller myresource")
}

// quantile estimates q from cumulative buckets as Prometheus'
// histogram_quantile does: linear within the bucket that holds it.
func quantile(h *dto.Histogram, q float64) float64 {
	total := float64(h.GetSampleCount())
	if total == 0 {
		return 0
	}
	buckets := h.GetBucket()
	sort.Slice(buckets, func(i, j int) bool { return buckets[i].GetUpperBound() < buckets[j].GetUpperBound() })
	rank := q * total
	lower, below := 0.0, 0.0
	for _, b := range buckets {
		upper, count := b.GetUpperBound(), float64(b.GetCumulativeCount())
		if count >= rank {
			if math.IsInf(upper, 1) {
				return lower
			}
			if count == below {
				return upper
			}
			return lower + (upper-lower)*(rank-below)/(count-below)
		}
		lower, below = upper, count
	}
	return lower
}

// waitMembersReady waits up to connectTimeout until the operator reports n
// member clusters Ready.
func (o *operatorMetrics) waitMembersReady(ctx context.Context, n int) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	ready := 0
	for {
		f, err := o.scrape(ctx)
		if err == nil {
			ready = countReady(f)
			if ready >= n {
				return nil
			}
		}
		if err := sleep(ctx, 200*time.Millisecond); err != nil {
			return fmt.Errorf("%d/%d member clusters Ready: %w", ready, n, err)
		}
	}
}

// profileDir, when set (BENCH_PROFILE), gets a CPU profile of the operator
// over the first round of each (d) scenario's create and image change.
var profileDir = os.Getenv("BENCH_PROFILE")

// profile records a CPU profile of the operator for d into
// profileDir/name.pprof, in the background; the returned function waits
// for it and reports how it went.
func (o *operatorMetrics) profile(ctx context.Context, name string, d time.Duration) func() {
	if o.pprof == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := o.writeProfile(ctx, filepath.Join(profileDir, name+".pprof"), d); err != nil {
			logf("profile %s: %v", name, err)
		}
	}()
	return func() { <-done }
}

func (o *operatorMetrics) writeProfile(ctx context.Context, path string, d time.Duration) error {
	url := fmt.Sprintf("%s/profile?seconds=%d", o.pprof, int(d.Seconds()))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := os.MkdirAll(profileDir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return err
	}
	logf("profile: %s", path)
	return f.Close()
}
