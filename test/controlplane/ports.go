package controlplane

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Ports come from below the kernel's ephemeral range. A port taken from
// "127.0.0.1:0" and released is the next one the kernel hands to an outgoing
// connection of any process, and with several test packages running at once
// an etcd or API server lost that race now and then ("address already in
// use"). Below the range only another listener can collide, and startEtcd and
// start retry that.
var ports struct {
	sync.Mutex
	given map[int]bool
}

func freePort() (int, error) {
	low, high := 10000, ephemeralLow()
	if high-low < 1000 {
		return anyPort()
	}
	ports.Lock()
	defer ports.Unlock()
	if ports.given == nil {
		ports.given = map[int]bool{}
	}
	for range 100 {
		p := low + rand.IntN(high-low)
		if ports.given[p] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		_ = l.Close()
		ports.given[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("no free port in [%d, %d) after 100 tries", low, high)
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

func anyPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lostPortRace says whether a child that failed to start did so because
// another process bound its port first.
func lostPortRace(p *process) bool {
	if p == nil || !p.exited() {
		return false
	}
	b, err := os.ReadFile(p.log.Name())
	return err == nil && strings.Contains(string(b), "address already in use")
}

// FreePort is a free port on 127.0.0.1 for a child process a test starts
// itself, from the same range as the control planes' ports. Start the child
// with StartProcess and retry on a new port when Process.LostPort says so.
func FreePort() (int, error) { return freePort() }
