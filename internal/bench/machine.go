package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Machine describes where the run happened.
type Machine struct {
	NumCPU       int
	GOMAXPROCS   int
	CPUModel     string
	MemTotal     string
	Kernel       string
	GoVersion    string
	NATSVersion  string
	NATSURL      string
	RedisVersion string
	RedisURL     string
	LoadStart    Load
}

// Load is /proc/loadavg: the 1, 5 and 15-minute load averages and the
// runnable/total task counts.
type Load struct {
	L1, L5, L15 float64
	Tasks       string
	OK          bool
}

func (l Load) String() string {
	if !l.OK {
		return "n/a"
	}
	return fmt.Sprintf("%.2f %.2f %.2f (%s)", l.L1, l.L5, l.L15, l.Tasks)
}

// readLoad reads /proc/loadavg (zero Load where it does not exist).
func readLoad() Load {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return Load{}
	}
	f := strings.Fields(string(b))
	if len(f) < 4 {
		return Load{}
	}
	var l Load
	var errs [3]error
	l.L1, errs[0] = strconv.ParseFloat(f[0], 64)
	l.L5, errs[1] = strconv.ParseFloat(f[1], 64)
	l.L15, errs[2] = strconv.ParseFloat(f[2], 64)
	l.Tasks = f[3]
	l.OK = errs[0] == nil && errs[1] == nil && errs[2] == nil
	return l
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func readMachine(ctx context.Context, e *env) Machine {
	m := Machine{
		NumCPU:     runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		LoadStart:  readLoad(),
		NATSURL:    e.opts.NATSURL,
		RedisURL:   redactURL(e.opts.RedisURL),
	}
	if e.nc != nil {
		m.NATSVersion = e.nc.ConnectedServerVersion()
	}
	if e.rdb != nil {
		if info, err := e.rdb.Info(ctx, "server").Result(); err == nil {
			for _, line := range strings.Split(info, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
					m.RedisVersion = v
				}
			}
		}
	}
	m.CPUModel = procField("/proc/cpuinfo", "model name")
	m.MemTotal = procField("/proc/meminfo", "MemTotal")
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// procField returns the value of the first "key: value" line of a /proc
// file, or "".
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// procStatusKB reads a "VmXXX:  123 kB" line of /proc/<pid>/status.
func procStatusKB(pid int, key string) (int64, error) {
	v := procField("/proc/"+strconv.Itoa(pid)+"/status", key)
	if v == "" {
		return 0, fmt.Errorf("bench: /proc/%d/status has no %s", pid, key)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bench: /proc/%d/status %s %q: %w", pid, key, v, err)
	}
	return n, nil
}
