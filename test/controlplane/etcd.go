package controlplane

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// etcd is one etcd process; with Options.SharedEtcd every cluster uses the
// first cluster's etcd under its own key prefix.
type etcd struct {
	owner *Cluster
	port  int
	proc  *process
}

func (e *etcd) url() string { return "http://127.0.0.1:" + strconv.Itoa(e.port) }

func startEtcd(ctx context.Context, owner *Cluster, bins string) (*etcd, error) {
	bin, err := binary(bins, "etcd")
	if err != nil {
		return nil, err
	}
	for range 3 {
		var e *etcd
		if e, err = startEtcdOnce(ctx, owner, bin); err == nil || e == nil || !lostPortRace(e.proc) {
			return e, err
		}
	}
	return nil, err
}

func startEtcdOnce(ctx context.Context, owner *Cluster, bin string) (*etcd, error) {
	client, err := freePort()
	if err != nil {
		return nil, err
	}
	peer, err := freePort()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(owner.Dir, "etcd-data")
	if err := os.RemoveAll(data); err != nil { // a start that lost its port may have left one
		return nil, err
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, err
	}
	c := "http://127.0.0.1:" + strconv.Itoa(client)
	p := "http://127.0.0.1:" + strconv.Itoa(peer)
	args := []string{
		"--name=etcd", "--data-dir=" + data,
		"--listen-client-urls=" + c, "--advertise-client-urls=" + c,
		"--listen-peer-urls=" + p, "--initial-advertise-peer-urls=" + p,
		"--initial-cluster=etcd=" + p,
		// Test data is disposable: skipping fsync keeps 2 cores' worth of
		// clusters from waiting on the disk.
		"--unsafe-no-fsync=true",
		"--quota-backend-bytes=8589934592",
		"--log-level=warn",
	}
	proc, err := startProcess(owner.Dir, "etcd", bin, args)
	if err != nil {
		return nil, err
	}
	e := &etcd{owner: owner, port: client, proc: proc}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return e, proc.waitFor(ctx, "health", func(ctx context.Context) error {
		return getOK(ctx, http.DefaultClient, c+"/health")
	})
}
