package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"

	"example.com/hub-operator/test/controlplane"
)

// requestKey is one series of apiserver_request_total, summed over codes,
// scopes and versions.
type requestKey struct {
	Cluster, Verb, Resource, Subresource string
}

// requests counts API requests by key.
type requests map[requestKey]float64

// writeVerbs are the verbs of apiserver_request_total that change state.
var writeVerbs = map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true, "DELETECOLLECTION": true}

// Resource names the benchmark counts by.
const (
	myResources = "myresources"
	deployments = "deployments"
	statusKey   = "status"
)

// class says who a request is attributed to.
type class int

const (
	// classMeasured is the measured component's (operator or baseline).
	classMeasured class = iota
	// classLease is a leader-election or API server identity Lease renewal.
	classLease
	// classHarness is the benchmark's own doing: MyResource creates, the
	// marker's Deployment status patches, and the TokenReviews and
	// SubjectAccessReviews that scraping the operator's metrics causes.
	classHarness
	// classServer is what an API server writes by itself in answer to a
	// request: the IPAddress objects its ClusterIP allocator creates for
	// every new Service.
	classServer
)

func classify(k requestKey) class {
	switch {
	case k.Resource == "leases":
		return classLease
	case k.Resource == "ipaddresses":
		return classServer
	case k.Resource == myResources && k.Subresource == "" && k.Verb == "POST",
		k.Resource == deployments && k.Subresource == statusKey,
		k.Resource == "tokenreviews", k.Resource == "subjectaccessreviews":
		return classHarness
	}
	return classMeasured
}

// snapshot scrapes apiserver_request_total of every cluster at once.
func snapshot(ctx context.Context, clusters []*controlplane.Cluster) (requests, error) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		out  = requests{}
		errs []error
	)
	for _, c := range clusters {
		wg.Go(func() {
			r, err := scrapeRequests(ctx, c)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			for k, v := range r {
				out[k] += v
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return out, nil
}

func scrapeRequests(ctx context.Context, c *controlplane.Cluster) (requests, error) {
	hc, err := rest.HTTPClientFor(c.Config)
	if err != nil {
		return nil, err
	}
	families, err := scrape(ctx, hc, c.Host()+"/metrics", "")
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", c.Name, err)
	}
	out := requests{}
	f := families["apiserver_request_total"]
	if f == nil {
		return nil, fmt.Errorf("cluster %s: no apiserver_request_total", c.Name)
	}
	for _, m := range f.GetMetric() {
		l := labels(m)
		out[requestKey{Cluster: c.Name, Verb: l["verb"], Resource: l["resource"], Subresource: l["subresource"]}] += m.GetCounter().GetValue()
	}
	return out, nil
}

// scrape GETs a Prometheus text endpoint, with a bearer token when token is set.
func scrape(ctx context.Context, hc *http.Client, url, token string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

func labels(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// since returns what happened between before and r.
func (r requests) since(before requests) requests {
	out := requests{}
	for k, v := range r {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// tally sums a phase's requests of one class.
type tally struct {
	// Writes counts the writes.
	Writes float64
	// ByVerb counts every request by verb (reads included).
	ByVerb map[string]float64
	// WritesBy counts the writes by "VERB resource[/subresource]".
	WritesBy map[string]float64
}

func (r requests) tally(want class) tally {
	t := tally{ByVerb: map[string]float64{}, WritesBy: map[string]float64{}}
	for k, v := range r {
		if classify(k) != want {
			continue
		}
		t.ByVerb[k.Verb] += v
		if writeVerbs[k.Verb] {
			t.Writes += v
			res := k.Resource
			if k.Subresource != "" {
				res += "/" + k.Subresource
			}
			t.WritesBy[k.Verb+" "+res] += v
		}
	}
	return t
}

// perUnit divides every count by n.
func perUnit(m map[string]float64, n float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = round(v/n, 3)
	}
	return out
}
