package controlplane

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// BuildOperator builds cmd/hub-operator once per process (with the race
// detector when race is true) and returns the binary's path.
func BuildOperator(race bool) (string, error) {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hub-operator-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "hub-operator")
		args := []string{"build", "-o", buildPath}
		if race {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, "./cmd/hub-operator")...)
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building hub-operator: %w\n%s", err, out)
		}
	})
	return buildPath, buildErr
}

// Operator is a running hub-operator process.
type Operator struct {
	// LogPath is the file holding everything the operator printed.
	LogPath string
	proc    *process
	bin     string
	dir     string
	args    []string
}

// OperatorOptions says how to run the operator.
type OperatorOptions struct {
	// Binary is the hub-operator binary; BuildOperator(false) when empty.
	Binary string
	// Name distinguishes the log files of several operators in one Env.
	Name string
	// Kubeconfig is the hub kubeconfig file; the hub's OperatorKubeconfigPath when empty.
	Kubeconfig string
	// RegistryNamespace is passed as --cluster-registry-namespace.
	RegistryNamespace string
	// Args are more flags. Metrics and probes default to random local ports.
	Args []string
}

// StartOperator runs the real hub-operator binary against the Env's hub.
func (e *Env) StartOperator(opts OperatorOptions) (*Operator, error) {
	if opts.Binary == "" {
		b, err := BuildOperator(false)
		if err != nil {
			return nil, err
		}
		opts.Binary = b
	}
	if opts.Name == "" {
		opts.Name = "hub-operator"
	}
	if opts.Kubeconfig == "" {
		opts.Kubeconfig = e.Hub.OperatorKubeconfigPath
	}
	args := []string{
		"--kubeconfig=" + opts.Kubeconfig,
		"--cluster-registry-namespace=" + opts.RegistryNamespace,
		"--metrics-bind-address=0",
		"--health-probe-bind-address=127.0.0.1:0",
		"--zap-log-level=info",
	}
	args = append(args, opts.Args...)
	o := &Operator{LogPath: filepath.Join(e.Dir, opts.Name+".log"), bin: opts.Binary, dir: e.Dir, args: args}
	o.args = append(o.args[:0:0], args...)
	e.mu.Lock()
	e.operators = append(e.operators, o)
	e.mu.Unlock()
	return o, o.start(opts.Name)
}

func (o *Operator) start(name string) error {
	p, err := startProcess(o.dir, name, o.bin, o.args)
	if err != nil {
		return err
	}
	o.proc = p
	return nil
}

// Restart starts the operator again with the same flags after Stop or Kill.
func (o *Operator) Restart() error {
	if o.proc != nil && !o.proc.exited() {
		return fmt.Errorf("operator is still running")
	}
	return o.start(o.proc.name)
}

// Running says whether the process is alive.
func (o *Operator) Running() bool { return o.proc != nil && !o.proc.exited() }

// Pid is the operator's process id.
func (o *Operator) Pid() int { return o.proc.Pid() }

// Stop ends the operator gracefully (SIGTERM), then forcefully.
func (o *Operator) Stop() error { return o.proc.stop(20 * time.Second) }

// Kill ends the operator with SIGKILL, as a node failure would.
func (o *Operator) Kill() error {
	if o.proc.exited() {
		return nil
	}
	_ = syscall.Kill(-o.proc.Pid(), syscall.SIGKILL)
	select {
	case <-o.proc.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("operator did not die")
	}
}

// Logs returns everything the operator printed so far.
func (o *Operator) Logs() (string, error) {
	b, err := os.ReadFile(o.LogPath)
	return string(b), err
}

// Wait blocks until the operator exits or ctx ends.
func (o *Operator) Wait(ctx context.Context) error {
	select {
	case <-o.proc.done:
		return o.proc.err
	case <-ctx.Done():
		return ctx.Err()
	}
}
