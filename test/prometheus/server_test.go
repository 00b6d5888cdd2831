package prometheus

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"

	"example.com/hub-operator/test/controlplane"
)

// server is a Prometheus server the test runs as a child process.
type server struct {
	API  promv1.API
	URL  string
	proc *controlplane.Process
}

// startPrometheus runs the prometheus binary with config (written to
// dir/prometheus.yml, rule files relative to dir) on a free local port, its
// data in dir, and waits until it is ready. It is stopped when the test ends.
func startPrometheus(t *testing.T, bin, dir string, config map[string]any) *server {
	t.Helper()
	b, err := yaml.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		port, err := controlplane.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		proc, err := controlplane.StartProcess(dir, "prometheus", bin,
			"--config.file="+cfg,
			"--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr,
			"--log.level=info",
		)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := proc.Stop(10 * time.Second); err != nil {
				t.Errorf("stopping prometheus: %v", err)
			}
		})
		s := &server{URL: "http://" + addr, proc: proc}
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		err = proc.WaitFor(ctx, "/-/ready", func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/-/ready", nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET /-/ready: %s", resp.Status)
			}
			return nil
		})
		cancel()
		if err == nil {
			c, err := api.NewClient(api.Config{Address: s.URL})
			if err != nil {
				t.Fatal(err)
			}
			s.API = promv1.NewAPI(c)
			return s
		}
		if !proc.LostPort() {
			t.Fatalf("starting prometheus: %v", err)
		}
	}
	t.Fatal("prometheus lost its port to another process three times")
	return nil
}

// query runs an instant query now and returns its vector.
func (s *server) query(ctx context.Context, expr string) (model.Vector, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, warnings, err := s.API.Query(ctx, expr, time.Now())
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	if len(warnings) > 0 {
		return nil, fmt.Errorf("query %q: warnings %v", expr, warnings)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("query %q: a %s, not a vector", expr, v.Type())
	}
	return vec, nil
}
