// Command bench measures hub-operator on real control planes against a bare
// client-go baseline that makes only the minimal writes, and writes a table,
// a JSON file (BENCH_OUT, default bin/bench/results.json) and a plot of the
// scaling sweep next to it. BENCH_QUICK=1 runs scenario (a) alone.
//
// It is a program, not a test: it takes many minutes and the whole machine,
// so `go test ./...` must never run it. `make bench` does.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"example.com/hub-operator/test/controlplane"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// scenario is one measured configuration.
type scenario struct {
	Name        string
	Members     int
	MyResources int
	// Sweep marks the points of the scaling sweep (c), which are plotted.
	Sweep bool
	// Distribution marks the distribution-latency scenarios (d), which run
	// on lean members of their own.
	Distribution bool
}

// plan lists the scenarios: (a) alone when quick.
func plan(quick bool) []scenario {
	a := scenario{Name: "a", Members: 3, MyResources: 100}
	if quick {
		return []scenario{a}
	}
	// The sweep before (b), the heaviest, so that a run cut short still
	// has its plot.
	out := []scenario{a}
	for _, m := range []int{1, 2, 5, 10, 20} {
		out = append(out, scenario{Name: "c-" + strconv.Itoa(m), Members: m, MyResources: 50, Sweep: true})
	}
	out = append(out, scenario{Name: "b", Members: 10, MyResources: 300}, rolloutScenario)
	return append(out, distributionScenarios...)
}

// only keeps the scenarios named in the comma-separated list names (all
// when it is empty), to re-run one with another setting; "d" names every
// distribution scenario.
func only(scenarios []scenario, names string) []scenario {
	if names == "" {
		return scenarios
	}
	want := strings.Split(names, ",")
	return slices.DeleteFunc(scenarios, func(s scenario) bool {
		return !slices.Contains(want, s.Name) && (!s.Distribution || !slices.Contains(want, "d"))
	})
}

func run() (err error) {
	out := os.Getenv("BENCH_OUT")
	if out == "" {
		out = filepath.Join(controlplane.RepoRoot(), "bin", "bench", "results.json")
	}
	if len(os.Args) > 2 && os.Args[1] == "report" {
		return report(out, os.Args[2:])
	}
	quick := os.Getenv("BENCH_QUICK") != "" && os.Getenv("BENCH_QUICK") != "0"
	scenarios := only(plan(quick), os.Getenv("BENCH_SCENARIOS"))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	bin, err := controlplane.BuildOperator(false) // no -race: RSS is measured
	if err != nil {
		return err
	}
	started := time.Now()
	var results []result
	// The convergence scenarios run on members with default flags, as
	// they always have; the distribution scenarios on a bed of lean members
	// of their own, started once the first is gone.
	small, lean := splitScenarios(scenarios)
	for _, group := range [][]scenario{small, lean} {
		if results, err = runGroup(ctx, bin, group, results, out); err != nil {
			return err
		}
	}
	logf("wall time %s", time.Since(started).Round(time.Second))
	return present(out, results)
}

func splitScenarios(scenarios []scenario) (small, lean []scenario) {
	for _, s := range scenarios {
		if s.Distribution {
			lean = append(lean, s)
		} else {
			small = append(small, s)
		}
	}
	return small, lean
}

// runGroup starts the control planes the scenarios need, runs them and
// appends their results to results (written to out after each).
func runGroup(ctx context.Context, bin string, scenarios []scenario, results []result, out string) (_ []result, err error) {
	if len(scenarios) == 0 {
		return results, nil
	}
	members := 0
	for _, s := range scenarios {
		members = max(members, s.Members)
	}
	leanMembers := scenarios[0].Distribution
	logf("starting a hub and %d members (in batches of %d, each on one etcd; lean: %v)", members, batchSize, leanMembers)
	env, err := startEnv(ctx, members, leanMembers)
	if err != nil {
		return results, err
	}
	defer func() {
		// A failed run keeps the control planes' logs; BENCH_KEEP=1 keeps
		// them for any run, to read the audit logs of what was measured.
		if stopErr := env.stop(err != nil || os.Getenv("BENCH_KEEP") == "1"); stopErr != nil {
			logf("stopping control planes: %v", stopErr)
		}
	}()
	for _, s := range scenarios {
		logf("scenario %s: %d MyResources x %d members", s.Name, s.MyResources, s.Members)
		run := env.runScenario
		switch {
		case s.Name == rolloutScenario.Name:
			run = env.runRollout
		case s.Distribution:
			run = env.runDistribution
		}
		r, err := run(ctx, bin, s)
		if err != nil {
			return results, fmt.Errorf("scenario %s: %w (control-plane logs in %s)", s.Name, err, env.Dir)
		}
		results = append(results, r)
		// Written after each scenario, so that a late failure keeps the rest.
		if err := writeJSON(out, results); err != nil {
			return results, err
		}
	}
	return results, nil
}

// present prints the table and draws the sweep's plot next to out.
func present(out string, results []result) error {
	printTable(os.Stdout, results)
	printRollouts(os.Stdout, results)
	printDistributions(os.Stdout, results)
	logf("results: %s", out)
	if hasSweep(results) {
		png := filepath.Join(filepath.Dir(out), "scaling.png")
		logf("plot: %s", png)
		if err := plotSweep(png, results); err != nil {
			return err
		}
	}
	if hasDistribution(results) {
		png := filepath.Join(filepath.Dir(out), "distribution.png")
		logf("plot: %s", png)
		return plotDistribution(png, results)
	}
	return nil
}

// report merges the results files of runs cut in parts (scenarios picked
// with BENCH_SCENARIOS) into out, then prints and plots them.
func report(out string, files []string) error {
	var all []result
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var rs []result
		if err := json.Unmarshal(b, &rs); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		all = append(all, rs...)
	}
	if err := writeJSON(out, all); err != nil {
		return err
	}
	return present(out, all)
}

func writeJSON(path string, results []result) error {
	b, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().UTC().Format("15:04:05")}, args...)...)
}
