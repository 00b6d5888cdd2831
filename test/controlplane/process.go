package controlplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// logVerbosity keeps child logs useful for a failed test without flooding the disk.
const logVerbosity = "--v=1"

// process is one child binary with its log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{} // closed when the process has exited
	err  error         // exit status; read after done
}

// spawner starts every child from one OS thread that never exits. Pdeathsig
// fires when the thread that forked the child dies, not the process, so a
// child forked from an arbitrary goroutine's thread could be killed early by
// the Go runtime retiring that thread; a locked, eternal thread avoids that.
type spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

var theSpawner spawner

func (s *spawner) start(cmd *exec.Cmd) error {
	s.once.Do(func() {
		s.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread lives as long as the process
			for r := range s.reqs {
				r.errc <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, errc: errc}
	return <-errc
}

// startProcess runs bin with args, logging to dir/name.log. The child gets
// its own process group and SIGKILL when the test process dies.
func startProcess(dir, name, bin string, args []string) (*process, error) {
	return startProcessEnv(dir, name, bin, args, nil)
}

// startProcessEnv is startProcess with env added to the inherited environment.
func startProcessEnv(dir, name, bin string, args, env []string) (*process, error) {
	logf, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := theSpawner.start(cmd); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the child's process id.
func (p *process) Pid() int { return p.cmd.Process.Pid }

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the child's process group, then SIGKILL after grace.
func (p *process) stop(grace time.Duration) error {
	if p == nil || p.exited() {
		return nil
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.Pid())
	}
}

// waitFor polls check until it returns nil, the process exits, or ctx ends.
func (p *process) waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	var last error
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if last = check(ctx); last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited while waiting for %s (see %s): %w", p.name, what, p.log.Name(), errors.Join(p.err, last))
		case <-ctx.Done():
			return fmt.Errorf("%s: timed out waiting for %s (see %s): %w", p.name, what, p.log.Name(), last)
		case <-tick.C:
		}
	}
}

// Process is a child process a test starts itself (a Prometheus server,
// say), handled as the control planes' own processes are: in a process group
// of its own, killed when the test process dies, its output in a log file.
type Process struct{ p *process }

// StartProcess runs bin with args, logging to dir/name.log.
func StartProcess(dir, name, bin string, args ...string) (*Process, error) {
	p, err := startProcess(dir, name, bin, args)
	if err != nil {
		return nil, err
	}
	return &Process{p: p}, nil
}

// LogPath is the file holding everything the process printed.
func (p *Process) LogPath() string { return p.p.log.Name() }

// WaitFor polls check until it returns nil, the process exits, or ctx ends.
func (p *Process) WaitFor(ctx context.Context, what string, check func(context.Context) error) error {
	return p.p.waitFor(ctx, what, check)
}

// LostPort says whether the process exited because another process bound
// its port first: start it again on a new one.
func (p *Process) LostPort() bool { return lostPortRace(p.p) }

// Stop ends the process with SIGTERM, then SIGKILL after grace.
func (p *Process) Stop(grace time.Duration) error { return p.p.stop(grace) }
